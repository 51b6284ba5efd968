"""Measuring the router on labelled messages: accuracy, per-label precision and recall, the
confusion matrix, and how often it answers confidently but wrongly (confident-wrong: the score that
decides answering without asking back, certainty or confidence, at or above the threshold, and the
label wrong)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import yaml

from dialogs.intents import Router


@dataclass(frozen=True)
class LabelScore:
    label: str
    support: int  # messages with this label
    predicted: int  # messages the router gave this label
    correct: int

    @property
    def precision(self) -> float | None:
        return self.correct / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.correct / self.support if self.support else None


@dataclass(frozen=True)
class Miss:
    text: str
    expected: str
    got: str
    confidence: float
    certainty: float = 0.0


@dataclass(frozen=True)
class Report:
    total: int
    correct: int
    threshold: float
    answered: int  # confidence ≥ threshold: answered without asking back
    misrouted: int  # answered, and wrong
    labels: tuple[LabelScore, ...]
    confusion: dict[str, dict[str, int]]  # expected label → predicted label → count
    misses: tuple[Miss, ...]  # wrong answers, most confident first
    unknown_labels: tuple[str, ...]  # labels in the data the router was never trained on
    alternative_correct: int = 0  # wrong by the label, right by the message's second acceptable label
    score: str = "confidence"  # what is compared with the threshold: confidence or certainty
    # (threshold, answered, confident and wrong) at other thresholds of the same score
    curve: tuple[tuple[float, int, int], ...] = ()

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.total else 0.0

    @property
    def misroute_rate(self) -> float:
        """Answered with confidence ≥ threshold but wrong, over all messages."""
        return self.misrouted / self.total if self.total else 0.0

    @property
    def answered_rate(self) -> float:
        return self.answered / self.total if self.total else 0.0

    @property
    def answered_accuracy(self) -> float:
        return (self.answered - self.misrouted) / self.answered if self.answered else 0.0


def load_labelled(path: Path, split: str | None = None, sources: set[str] | None = None) -> list[tuple[str, str]]:
    """Reads an evaluation file: `messages: [{text, category}, ...]` (our own set), or a list of
    `{text, label, alt, source, split}` (the held-out set of real messages); split keeps one part,
    sources (held-out set only) keeps the messages of those source ids (s1, s3, ...)."""
    return [(text, label) for text, label, _ in _read(path, split, sources)]


def load_alternatives(path: Path, split: str | None = None, sources: set[str] | None = None) -> dict[str, str]:
    """The second label that is also a right reading, for the messages that have one (held-out set)."""
    return {text: alt for text, _, alt in _read(path, split, sources) if alt}


def _read(path: Path, split: str | None, sources: set[str] | None = None) -> list[tuple[str, str, str | None]]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if isinstance(data, dict):
        return [(str(m["text"]), str(m["category"]), None) for m in data["messages"]]
    return [(str(m["text"]), str(m["label"]), m.get("alt")) for m in data
            if split in (None, "all", m.get("split")) and (sources is None or m.get("source") in sources)]


@dataclass(frozen=True)
class Agreement:
    """How far two labellings of the same messages agree."""
    messages: int
    same_label: int  # the first labels are the same
    overlapping: int  # label or alt of one is label or alt of the other
    kappa: float  # Cohen's kappa on the first labels: agreement beyond what the labels' frequencies give by chance


def agreement(first: Path, second: Path, split: str | None = None) -> Agreement:
    """Compares two labellings of the same messages (matched by text; a message only one of them has is an error)."""
    a = {text: (label, alt) for text, label, alt in _read(first, split)}
    b = {text: (label, alt) for text, label, alt in _read(second, split)}
    if a.keys() != b.keys():
        raise ValueError(f"{first} and {second} label different messages ({len(a.keys() ^ b.keys())} not in both)")
    n = len(a)
    same = sum(a[t][0] == b[t][0] for t in a)
    overlapping = sum(bool({*a[t]} & {*b[t]} - {None}) for t in a)
    counts_a, counts_b = Counter(label for label, _ in a.values()), Counter(label for label, _ in b.values())
    chance = sum(counts_a[label] * counts_b[label] for label in counts_a) / n / n if n else 0.0
    kappa = (same / n - chance) / (1 - chance) if n and chance < 1 else 1.0
    return Agreement(n, same, overlapping, kappa)


CURVE = (0.65, 0.8, 0.9, 0.92, 0.94, 0.96, 0.98)  # the other thresholds a report shows


def evaluate(router: Router, labelled: list[tuple[str, str]], threshold: float,
             alternatives: dict[str, str] | None = None, score: str = "confidence") -> Report:
    """Classifies every message and compares with its label (top-1 is strict: the second acceptable
    label of an ambiguous message is counted apart, in alternative_correct). score: what decides
    answering without asking back, the router's confidence or its calibrated certainty."""
    if score not in ("confidence", "certainty"):
        raise ValueError(f"score is confidence or certainty, not {score!r}")
    results = router.classify_many([text for text, _ in labelled])
    confusion: dict[str, Counter] = {}
    misses = []
    answered = misrouted = correct = alternative = 0
    for (text, expected), result in zip(labelled, results):
        confusion.setdefault(expected, Counter())[result.label] += 1
        confident = getattr(result, score) >= threshold
        answered += confident
        if result.label == expected:
            correct += 1
        else:
            alternative += (alternatives or {}).get(text) == result.label
            misrouted += confident
            misses.append(Miss(text, expected, result.label, result.confidence, result.certainty))
    expected_counts = Counter(expected for _, expected in labelled)
    predicted_counts = Counter(r.label for r in results)
    all_labels = sorted(set(expected_counts) | set(predicted_counts))
    scores = tuple(
        LabelScore(label, expected_counts[label], predicted_counts[label], confusion.get(label, Counter())[label])
        for label in all_labels
    )
    return Report(
        total=len(labelled), correct=correct, threshold=threshold, answered=answered, misrouted=misrouted,
        labels=scores, confusion={k: dict(v) for k, v in sorted(confusion.items())},
        misses=tuple(sorted(misses, key=lambda m: -getattr(m, score))),
        unknown_labels=tuple(sorted(set(expected_counts) - set(router.labels))),
        alternative_correct=alternative, score=score,
        curve=tuple((t, sum(getattr(r, score) >= t for r in results),
                     sum(getattr(r, score) >= t and r.label != e for r, (_, e) in zip(results, labelled)))
                    for t in CURVE),
    )


def format_report(report: Report, misses: int = 20) -> str:
    """Renders the report as plain text: overall figures, a table per label, the confusions, the worst misses."""

    def pct(value: float | None) -> str:
        return "   -  " if value is None else f"{value * 100:5.1f}%"

    lines = [
        f"messages: {report.total}",
        f"top-1 accuracy: {pct(report.accuracy)} ({report.correct}/{report.total})",
        f"threshold: {report.score} ≥ {report.threshold:.2f}",
        f"answered directly ({report.score} ≥ threshold): {pct(report.answered_rate)} ({report.answered}/{report.total}),"
        f" of which right: {pct(report.answered_accuracy)}",
        f"confident-wrong (misroute rate: answered directly and wrong, over all messages): {pct(report.misroute_rate)}"
        f" ({report.misrouted}/{report.total})",
    ]
    if report.curve and report.total:
        lines.append(f"at other thresholds of {report.score} (answered directly / confident-wrong):")
        lines += [f"  {t:.2f}: {pct(a / report.total)} / {pct(w / report.total)}" for t, a, w in report.curve]
    if report.alternative_correct:
        lines.append(f"wrong by the label but right by the message's second acceptable label: {report.alternative_correct}"
                     f" (top-1 counting them: {pct((report.correct + report.alternative_correct) / report.total)})")
    if report.unknown_labels:
        lines.append(f"labels with no training examples: {', '.join(report.unknown_labels)}")
    width = max([len(s.label) for s in report.labels] + [5])
    lines += ["", "per label (recall: of the messages with this label, the share routed to it):",
              f"{'label':<{width}}  support  precision  recall"]
    for s in report.labels:
        lines.append(f"{s.label:<{width}}  {s.support:7d}    {pct(s.precision)}  {pct(s.recall)}")
    lines += ["", "confusion matrix (rows: expected, columns: predicted, by number; . is 0):"]
    lines += _matrix(report)
    lines += ["", "confusions (expected → predicted: count):"]
    pairs = sorted(((n, e, p) for e, row in report.confusion.items() for p, n in row.items() if p != e), reverse=True)
    lines += [f"  {e} → {p}: {n}" for n, e, p in pairs] or ["  none"]
    if misses and report.misses:
        lines += ["", f"most confident misses (up to {misses}):"]
        lines += [f"  {m.confidence:.2f} (certainty {m.certainty:.2f})  {m.expected} → {m.got}: {m.text}"
                  for m in report.misses[:misses]]
    return "\n".join(lines)


def _matrix(report: Report) -> list[str]:
    names = [s.label for s in report.labels]
    width = max(len(n) for n in names) + 4
    cell = max(3, len(str(len(names))) + 1, len(str(report.total)) + 1)
    lines = [" " * width + "".join(f"{i + 1:>{cell}}" for i in range(len(names)))]
    for i, expected in enumerate(names):
        row = report.confusion.get(expected, {})
        cells = "".join(f"{row.get(p, 0) or '.':>{cell}}" for p in names)
        lines.append(f"{i + 1:>2} {expected:<{width - 3}}{cells}")
    return lines
