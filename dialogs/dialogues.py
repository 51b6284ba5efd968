"""Replaying written test conversations through the engine and checking their outcomes
(`kefu eval-dialogues`, and the test suite). The format is described in tests/data/dialogues/README.md.

Pure apart from reading the files: cases are kept by an in-memory ledger, the clock is the
conversation's own (one minute a turn), and the router is whatever the caller gives."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Iterable
from zoneinfo import ZoneInfo

import yaml

from dialogs.conversation import CaseView, Conversation, Inbound, Turn, with_detail
from dialogs.engine import Engine

DEFAULT_START = "2026-12-02 10:00"  # a Wednesday morning, local time
# No reply may show these: the manual's paper form of address, or a template left unfilled.
FORBIDDEN = ("先生（女士）", "{{", "{%", "}}", "None")


class MemoryLedger:
    """Storage for one replayed conversation: numbers cases, remembers them, keeps the clock."""

    def __init__(self, now: datetime, numbers: Iterable[str] = ()):
        self.now = now
        self.cases: dict[str, dict[str, Any]] = {}
        self._counter = itertools.count(1)
        self._numbers = list(numbers)  # an approved conversation's own case numbers, handed out in order

    def number_case(self, category: str) -> str:
        if self._numbers:
            return self._numbers.pop(0)
        return f"KF-{self.now:%Y%m%d}-{next(self._counter):04d}"

    def find_case(self, number: str) -> CaseView | None:
        case = self.cases.get(number)
        if case is None:
            return None
        return CaseView(number, case["category"], "open", case["step"], case["role"], case["deadline"], mine=True)

    def my_cases(self) -> list[CaseView]:
        return [view for view in (self.find_case(n) for n in reversed(list(self.cases))) if view is not None]

    def apply(self, turn: Turn) -> None:
        for event in turn.events:
            if event.kind == "case_opened":
                self.cases[event.data["number"]] = dict(event.data, facts=dict(event.data["facts"]))
            elif event.kind == "case_facts_corrected" and event.data.get("case") in self.cases:
                self.cases[event.data["case"]]["facts"].update(event.data["facts"])
            elif event.kind == "case_detail_added" and event.data.get("case") in self.cases:
                case = self.cases[event.data["case"]]
                case["facts"] = with_detail(case["facts"], event.data["text"])


@dataclass
class Result:
    """One conversation replayed: what went wrong (nothing, when it passed)."""

    id: str
    patterns: list[str]
    about: str
    source: str
    failures: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def load(paths: Iterable[Path]) -> list[dict[str, Any]]:
    """Reads every conversation of the given files (or of every *.yaml in the given folders)."""
    conversations: list[dict[str, Any]] = []
    for path in paths:
        # known_failures.yaml beside the conversations lists the ones expected to fail, not conversations
        files = sorted(f for f in Path(path).glob("*.yaml") if not f.name.startswith("known_")) if Path(path).is_dir() else [Path(path)]
        for file in files:
            conversations += yaml.safe_load(file.read_text(encoding="utf-8")) or []
    return conversations


def replay(engine: Engine, conversation: dict[str, Any]) -> Result:
    """Runs one written conversation through the engine and checks it."""
    zone = ZoneInfo(engine.shared.timezone)
    start = _local(conversation.get("at", DEFAULT_START), zone)
    ledger = MemoryLedger(start, conversation.get("case_numbers") or ())
    conv = Conversation()
    result = Result(conversation["id"], list(conversation["patterns"]), conversation["about"],
                    str(conversation.get("source", "")))
    previous: list[str] = []
    human = False
    options: list[Any] = []
    for n, turn in enumerate(conversation["turns"], start=1):
        ledger.now = _local(turn["at"], zone) if "at" in turn else start + timedelta(minutes=n - 1)
        if "choice" in turn:  # a pressed option by its value, as an approved transcript keeps it
            inbound, shown = Inbound(choice=str(turn["choice"])), f"[{turn['choice']}]"
        elif "press" in turn:
            option = next((o for o in options if turn["press"] in o.label), None)
            if option is None:
                result.failures.append(f"turn {n}: no button with {turn['press']!r} among {[o.label for o in options]}")
                break
            inbound, shown = Inbound(choice=option.value), f"[{option.label}]"
        else:
            inbound, shown = Inbound(text=str(turn["say"])), str(turn["say"])
        try:
            outcome = engine.handle(conv, inbound, ledger)
        except Exception as exc:  # a crash is a failure of this conversation, not of the run
            result.failures.append(f"turn {n}: crashed: {type(exc).__name__}: {exc}")
            break
        ledger.apply(outcome)
        human = human or any(e.kind == "human_requested" for e in outcome.events)
        lines = [r.text for r in outcome.replies]
        options = [o for r in outcome.replies for o in r.options] or options
        result.transcript += [f"客户: {shown}"] + [f"客服: {line}" for line in lines]
        _check_turn(n, turn.get("expect") or {}, lines, outcome, previous, result.failures)
        previous = lines
    _check_end(conversation.get("end") or {}, ledger, conv, human, result.failures)
    return result


def first_moves(engine: Engine, labelled: Iterable[tuple[str, str]], alternatives: dict[str, str] | None = None) -> Counter:
    """What the engine does with each labelled message sent as a conversation's first: "right" (it started
    the message's complaint or topic, or its second acceptable one), "wrong" (another one) or "asked" (the
    menu or a which-problem question). The router's figures say what it reads; these say what the customer gets."""
    alternatives = alternatives or {}
    moves: Counter = Counter()
    for text, label in labelled:
        conv = Conversation()
        engine.handle(conv, Inbound(text=text), MemoryLedger(_local(DEFAULT_START, engine.zone)))
        started = conv.category
        moves["asked" if started is None else "right" if started in (label, alternatives.get(text)) else "wrong"] += 1
    return moves


def _local(moment: Any, zone: ZoneInfo) -> datetime:
    """A written local time, to the minute (2026-12-02 10:00) or to the second."""
    text = str(moment)
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S" if text.count(":") == 2 else "%Y-%m-%d %H:%M").replace(tzinfo=zone)


def _check_turn(n: int, expect: dict[str, Any], lines: list[str], outcome: Turn, previous: list[str],
                failures: list[str]) -> None:
    if not lines:
        failures.append(f"turn {n}: no reply")
    shown = "\n".join(lines + [o.label for r in outcome.replies for o in r.options])
    for text in expect.get("has", []):
        if str(text) not in shown:
            failures.append(f"turn {n}: missing {text!r}")
    if expect.get("has_any") and not any(str(t) in shown for t in expect["has_any"]):
        failures.append(f"turn {n}: none of {expect['has_any']!r}")
    if "replies" in expect and lines != [str(r) for r in expect["replies"]]:
        failures.append(f"turn {n}: replies differ from the approved ones: {lines!r}")
    for text in expect.get("lacks", []):
        if str(text) in shown:
            failures.append(f"turn {n}: should not say {text!r}")
    for text in FORBIDDEN:
        if any(text in line for line in lines):
            failures.append(f"turn {n}: shows {text!r}")
    repeated = [line for line in lines if line in previous]
    if repeated:
        failures.append(f"turn {n}: repeats the last turn's line {repeated[0][:40]!r}")


def _check_end(end: dict[str, Any], ledger: MemoryLedger, conv: Conversation, human: bool, failures: list[str]) -> None:
    if "cases" in end:
        opened = list(ledger.cases.values())
        expected = end["cases"] or []
        if [c["category"] for c in opened] != [c["category"] for c in expected]:
            failures.append(f"end: cases {[c['category'] for c in opened]}, expected {[c['category'] for c in expected]}")
        else:
            for got, want in zip(opened, expected):
                facts = got["facts"]
                for key, value in (want.get("facts") or {}).items():
                    if str(facts.get(key)) != str(value):
                        failures.append(f"end: {got['category']} fact {key} = {facts.get(key)!r}, expected {value!r}")
                for key, value in (want.get("facts_contain") or {}).items():
                    if str(value) not in str(facts.get(key, "")):
                        failures.append(f"end: {got['category']} fact {key} = {facts.get(key)!r}, should contain {value!r}")
                for key in want.get("no_facts") or []:
                    if key in facts:
                        failures.append(f"end: {got['category']} should not have fact {key} (= {facts[key]!r})")
    if "human" in end and bool(end["human"]) != human:
        failures.append(f"end: a person {'was not' if end['human'] else 'was'} asked for")
    if "complaint" in end:
        want = None if end["complaint"] in (None, "none") else end["complaint"]
        if conv.category != want:
            failures.append(f"end: conversation in {conv.category!r}, expected {want!r}")


@dataclass(frozen=True)
class Report:
    results: list[Result]

    def by(self, key: str) -> dict[str, tuple[int, int]]:
        """Passed and total per pattern (key='patterns'), per topic (about) or per source kind."""
        counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for result in self.results:
            values = result.patterns if key == "patterns" else [getattr(result, key).split(" ")[0]]
            for value in values:
                counts[value][1] += 1
                counts[value][0] += result.passed
        return {k: (v[0], v[1]) for k, v in sorted(counts.items())}

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)


def evaluate(engine: Engine, conversations: list[dict[str, Any]]) -> Report:
    return Report([replay(engine, c) for c in conversations])


def format_report(report: Report, failures: int = 10) -> str:
    total = len(report.results)
    lines = [f"conversations: {report.passed}/{total} passed ({100 * report.passed / max(total, 1):.1f} %)", "",
             "per pattern:"]
    for name, (ok, n) in report.by("patterns").items():
        lines.append(f"  {name:<12} {ok:>4}/{n:<4} {100 * ok / n:5.1f} %")
    lines += ["", "per source:"]
    for name, (ok, n) in report.by("source").items():
        lines.append(f"  {name:<12} {ok:>4}/{n:<4} {100 * ok / n:5.1f} %")
    failed = [r for r in report.results if not r.passed]
    reasons = Counter(f.split(": ", 1)[1].split(" ")[0] for r in failed for f in r.failures)
    if failed:
        lines += ["", f"failed ({len(failed)}), first {min(failures, len(failed))}:"]
        for result in failed[:failures]:
            lines.append(f"  {result.id} [{', '.join(result.patterns)}]: {'; '.join(result.failures[:3])}")
        lines.append("  kinds: " + ", ".join(f"{k} {v}" for k, v in reasons.most_common(6)))
    return "\n".join(lines)
