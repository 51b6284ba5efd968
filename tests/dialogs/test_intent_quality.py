"""Routing quality on the labelled set, held to the issue's goals; a new confident misroute fails."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from dialogs.content import load_content
from dialogs.evaluation import evaluate, load_labelled
from dialogs.intents import Router

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="module")
def measured():
    content = load_content()
    router = Router.train(content.examples())
    labelled = load_labelled(DATA / "intents_eval.yaml")
    threshold = content.shared.routing.threshold
    report = evaluate(router, labelled, threshold)
    confident_misses = {(text, label) for text, label in labelled
                        if (r := router.classify(text)).confidence >= threshold and r.label != label}
    return report, confident_misses


def test_eval_set_is_large_and_kept_apart_from_training():
    content = load_content()
    labelled = load_labelled(DATA / "intents_eval.yaml")
    assert len(labelled) >= 400
    trained = {t for items in content.examples().values() for t in items}
    assert not trained & {text for text, _ in labelled}


def test_held_out_real_messages_are_never_training_examples():
    """The held-out set (real messages nobody on the project wrote) only measures: none of it is taught."""
    from dialogs.folding import fold

    content = load_content()
    trained = {fold(t).casefold() for items in content.examples().values() for t in items}
    held_out = {fold(t).casefold() for t, _ in load_labelled(DATA / "heldout" / "messages.yaml")}
    assert len(held_out) >= 300
    assert not trained & held_out


def test_real_examples_are_not_near_copies_of_held_out_messages():
    """Real messages taught from public sources (scripts_yaml/examples/real_*.yaml) may share a source with the
    held-out set: none may equal one of its messages, or nearly (ratio 0.85 or more, punctuation stripped)."""
    import difflib
    import re

    strip = re.compile(r"[\W_]+")
    held_out = [strip.sub("", t).casefold() for t, _ in load_labelled(DATA / "heldout" / "messages.yaml")]
    examples = Path(__file__).resolve().parents[2] / "scripts_yaml" / "examples"
    real = [t for path in sorted(examples.glob("real_*.yaml"))
            for items in yaml.safe_load(path.read_text(encoding="utf-8")).values() for t in items]
    assert len(real) >= 300
    close = []
    for text in real:
        a = strip.sub("", text).casefold()
        for b in held_out:
            matcher = difflib.SequenceMatcher(None, a, b)
            if matcher.real_quick_ratio() >= 0.85 and matcher.quick_ratio() >= 0.85 and matcher.ratio() >= 0.85:
                close.append(text)
    assert not close, f"nearly a held-out message: {close}"


def test_top1_and_misroute_meet_the_goals(measured):
    report, _ = measured
    assert report.accuracy >= 0.95
    assert report.misroute_rate <= 0.02


def test_every_confident_misroute_is_a_known_case_to_learn_from(measured):
    _, misses = measured
    known = {(m["text"], m["label"]) for m in yaml.safe_load((DATA / "known_misroutes.yaml").read_text(encoding="utf-8"))["misroutes"]}
    assert misses <= known, f"new confident misroutes: {sorted(misses - known)}"


@pytest.fixture(scope="module")
def by_certainty():
    """Our own set and the held-out dev split of real messages, measured as kefu now decides: by the
    calibrated certainty at routing.certainty (the test split is never measured here)."""
    content = load_content()
    router = Router.train(content.examples())
    threshold = content.shared.routing.certainty
    assert threshold is not None
    own = evaluate(router, load_labelled(DATA / "intents_eval.yaml"), threshold, score="certainty")
    dev = evaluate(router, load_labelled(DATA / "heldout" / "messages.yaml", "dev"), threshold, score="certainty")
    by_confidence = evaluate(router, load_labelled(DATA / "heldout" / "messages.yaml", "dev"),
                             content.shared.routing.threshold)
    return own, dev, by_confidence


def test_the_certainty_keeps_confident_mistakes_on_real_messages_rare_without_asking_everything(by_certainty):
    """Issue 9: on real messages at most 3 % answered directly and wrong, while a fair share is still
    answered directly (a threshold nothing passes would meet the first goal by asking about everything)."""
    own, dev, by_confidence = by_certainty
    assert dev.misroute_rate <= 0.03 and dev.answered_rate >= 0.35
    assert dev.misroute_rate < by_confidence.misroute_rate / 4  # the probability alone at its threshold: 18 %
    assert own.misroute_rate <= 0.005 and own.answered_rate >= 0.55
    assert own.correct >= 508 and dev.accuracy == by_confidence.accuracy  # 96.6 % as before: the labels are unchanged
