"""The written test conversations (tests/data/dialogues): every one replayed through the engine with the
real router and checked on its outcome. A conversation that fails and is not listed in
known_failures.yaml fails the suite; a listed one that now passes must be taken off the list."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dialogs import dialogues
from dialogs.content import load_content
from dialogs.engine import Engine
from dialogs.intents import Router

DATA = Path(__file__).resolve().parent.parent / "data" / "dialogues"
PATTERNS = {"digression", "cancel", "thanks_bye", "handoff", "no_trap", "choice", "ask_missing", "correction", "fee",
            "human_touch", "tracking", "chitchat", "multi"}


@pytest.fixture(scope="module")
def report():
    content = load_content()
    engine = Engine(content, Router.train(content.examples()))
    return dialogues.evaluate(engine, dialogues.load([DATA]))


def known_failures() -> dict[str, str]:
    return {k["id"]: k["why"] for k in yaml.safe_load((DATA / "known_failures.yaml").read_text(encoding="utf-8"))["failures"]}


def test_the_set_covers_every_pattern_in_every_category_and_topic():
    conversations = dialogues.load([DATA])
    assert len(conversations) >= 150
    assert len({c["id"] for c in conversations}) == len(conversations)
    assert {p for c in conversations for p in c["patterns"]} == PATTERNS
    content = load_content()
    about = {c["about"] for c in conversations}
    assert set(content.categories) | set(content.policies.topics) <= about


def test_every_conversation_passes_or_is_a_known_failure(report):
    known = known_failures()
    failed = {r.id: r.failures for r in report.results if not r.passed}
    new = {i: f for i, f in failed.items() if i not in known}
    assert not new, "\n".join(f"{i}: {'; '.join(f)}" for i, f in sorted(new.items()))


def test_known_failures_are_still_failures(report):
    passed = {r.id for r in report.results if r.passed}
    fixed = sorted(set(known_failures()) & passed)
    assert not fixed, f"these pass now: take them off known_failures.yaml: {fixed}"


def test_a_conversation_that_breaks_the_rules_fails(content):
    """The runner itself: a repeated line, a wrong figure and a missing case are each caught."""
    engine = Engine(content)
    result = dialogues.replay(engine, {
        "id": "probe", "patterns": ["fee"], "about": "cod", "turns": [
            {"say": "代收货款（办理、手续费、提款）"},
            {"say": "5000", "expect": {"has": ["16.00"]}},
            {"say": "哈哈哈"}, {"say": "哈哈哈"},
        ], "end": {"cases": [{"category": "stranded"}]}})
    assert any("missing '16.00'" in f for f in result.failures)
    assert any(f.startswith("end: cases") for f in result.failures)
