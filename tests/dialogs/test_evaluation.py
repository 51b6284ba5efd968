"""The evaluation's arithmetic, on a router whose answers are fixed."""

from __future__ import annotations

from pathlib import Path

import pytest

from dialogs.evaluation import agreement, evaluate, format_report, load_alternatives, load_labelled
from dialogs.intents import Classification


class FixedRouter:
    """Answers each message with the label and confidence it was given."""

    labels = ("a", "b", "other")

    def __init__(self, answers: dict[str, tuple[str, float]]):
        self.answers = answers

    def classify_many(self, texts):
        return [Classification(*self.answers[t], candidates=(self.answers[t],)) for t in texts]


LABELLED = [("1", "a"), ("2", "a"), ("3", "a"), ("4", "b"), ("5", "b"), ("6", "c")]
ANSWERS = {
    "1": ("a", 0.9),  # right, confident
    "2": ("a", 0.3),  # right, unsure
    "3": ("b", 0.8),  # wrong, confident: a misroute
    "4": ("b", 0.7),
    "5": ("a", 0.2),  # wrong, unsure: asked back, not a misroute
    "6": ("other", 0.9),  # a label the router was never trained on
}


def test_report_figures():
    report = evaluate(FixedRouter(ANSWERS), LABELLED, threshold=0.5)
    assert (report.total, report.correct) == (6, 3)
    assert report.accuracy == 0.5
    assert (report.answered, report.misrouted) == (4, 2)
    assert report.misroute_rate == 2 / 6
    assert report.answered_accuracy == 0.5
    scores = {s.label: s for s in report.labels}
    assert (scores["a"].precision, scores["a"].recall) == (2 / 3, 2 / 3)
    assert (scores["b"].precision, scores["b"].recall) == (1 / 2, 1 / 2)
    assert scores["c"].precision is None and scores["c"].recall == 0
    assert scores["other"].recall is None and scores["other"].precision == 0
    assert report.confusion == {"a": {"a": 2, "b": 1}, "b": {"b": 1, "a": 1}, "c": {"other": 1}}
    assert [m.text for m in report.misses] == ["6", "3", "5"]  # most confident first
    assert report.unknown_labels == ("c",)


def test_format_report():
    text = format_report(evaluate(FixedRouter(ANSWERS), LABELLED, threshold=0.5))
    assert "top-1 accuracy:  50.0% (3/6)" in text
    assert "threshold: confidence ≥ 0.50" in text
    assert "answered directly (confidence ≥ threshold):  66.7% (4/6), of which right:  50.0%" in text
    assert "confident-wrong (misroute rate: answered directly and wrong, over all messages):  33.3% (2/6)" in text
    assert "  0.80:  50.0% /  33.3%" in text and "  0.90:  33.3% /  16.7%" in text  # the other thresholds
    assert "labels with no training examples: c" in text
    assert "a → b: 1" in text and "c → other: 1" in text
    assert "0.80 (certainty 0.00)  a → b: 3" in text


class CertainRouter(FixedRouter):
    """Also gives each answer a certainty apart from its confidence."""

    def classify_many(self, texts):
        return [Classification(label, confidence, ((label, confidence),), certainty)
                for label, confidence, certainty in (self.answers[t] for t in texts)]


def test_the_certainty_can_decide_what_is_answered_directly():
    answers = {"1": ("a", 0.9, 0.95),  # right and sure
               "2": ("a", 0.3, 0.2),
               "3": ("b", 0.99, 0.6),  # wrong, confident, but not sure: asked back by certainty
               "4": ("b", 0.7, 0.92),  # right, sure though its confidence is lower
               "5": ("a", 0.2, 0.1),
               "6": ("other", 0.9, 0.91)}  # wrong and sure: the one confident-wrong by certainty
    by_confidence = evaluate(CertainRouter(answers), LABELLED, threshold=0.9)
    by_certainty = evaluate(CertainRouter(answers), LABELLED, threshold=0.9, score="certainty")
    assert (by_confidence.answered, by_confidence.misrouted) == (3, 2)
    assert (by_certainty.answered, by_certainty.misrouted) == (3, 1)
    assert by_certainty.accuracy == by_confidence.accuracy == 0.5  # the labels are the same
    assert [m.text for m in by_certainty.misses] == ["6", "3", "5"]  # most certain first
    assert "threshold: certainty ≥ 0.90" in format_report(by_certainty)


def test_load_labelled(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text('messages:\n  - {text: "货没发", category: stranded}\n  - {text: 123, category: other}\n',
                    encoding="utf-8")
    assert load_labelled(path) == [("货没发", "stranded"), ("123", "other")]


def test_load_labelled_keeps_a_split_and_sources(tmp_path):
    path = tmp_path / "heldout.yaml"
    path.write_text('- {text: "a", label: stranded, source: s1, split: dev}\n'
                    '- {text: "b", label: other, alt: vague, source: s3, split: dev}\n'
                    '- {text: "c", label: tracking, source: s2, split: test}\n', encoding="utf-8")
    assert load_labelled(path, "dev") == [("a", "stranded"), ("b", "other")]
    assert load_labelled(path, "dev", {"s3", "s5"}) == [("b", "other")]
    assert load_labelled(path, None, {"s1", "s2"}) == [("a", "stranded"), ("c", "tracking")]
    assert load_alternatives(path, "dev", {"s1"}) == {}
    assert load_alternatives(path, "dev", {"s3"}) == {"b": "vague"}


def test_agreement_between_two_labellings(tmp_path):
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text('- {text: "a", label: stranded, split: dev}\n- {text: "b", label: other, split: dev}\n'
                     '- {text: "c", label: tracking, alt: stranded, split: test}\n- {text: "d", label: cod, split: test}\n',
                     encoding="utf-8")
    second.write_text('- {text: "d", label: cod, split: test}\n- {text: "c", label: stranded, split: test}\n'
                      '- {text: "b", label: vague, split: dev}\n- {text: "a", label: stranded, split: dev}\n',
                      encoding="utf-8")
    assert agreement(first, first).kappa == 1.0
    found = agreement(first, second)  # matched by text, not by order
    assert (found.messages, found.same_label, found.overlapping) == (4, 2, 3)  # c: alt stranded is b's label
    # by chance: a's labels 1/4 each; b's stranded 2/4, cod 1/4, vague 1/4: (2 + 1) / 16
    assert found.kappa == pytest.approx((2 / 4 - 3 / 16) / (1 - 3 / 16))
    assert agreement(first, second, "test").same_label == 1
    second.write_text('- {text: "a", label: stranded}\n', encoding="utf-8")
    with pytest.raises(ValueError, match="different messages"):
        agreement(first, second)


def test_the_held_out_sets_labellings_are_of_the_same_messages():
    # labelled again blind (tests/data/heldout/agreement/README.md): every message, and each labelling agrees far
    # beyond chance with the first: the labels are learnable, so the router is what falls short of them
    heldout = Path(__file__).resolve().parent.parent / "data" / "heldout"
    for again in sorted((heldout / "agreement").glob("labeller_*.yaml")):
        found = agreement(heldout / "messages.yaml", again)
        assert found.messages == 460 and found.kappa > 0.9


def test_first_moves_count_what_the_engine_starts(content):
    """The engine's first move on each message: its topic started, another one started, or the menu shown."""
    from dialogs.dialogues import first_moves
    from dialogs.engine import Engine

    labelled = [("发票怎么开", "invoice"), ("代收5000手续费多少", "storage"), ("你好", "stranded"), ("保价5000多少钱", "stranded")]
    moves = first_moves(Engine(content, None), labelled, {"代收5000手续费多少": "cod"})  # right by its second label
    assert moves == {"right": 2, "wrong": 1, "asked": 1}
