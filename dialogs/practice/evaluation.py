"""Measuring the scorer on a graded set of replies (tests/data/training_graded.yaml): does it rank a
better reply above a worse one for the same scenario, and does it catch every forbidden move?"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import yaml

from dialogs.practice.content import Training
from dialogs.practice.scoring import score_replies

GRADES = ("good", "partial", "bad")  # best first


@dataclass(frozen=True)
class Graded:
    category: str
    scenario: int
    grade: str
    text: str
    forbidden: tuple[str, ...] = ()  # the moves a person marked it as committing


@dataclass
class Report:
    pairs: int = 0
    ranked: int = 0  # pairs where the better reply scored strictly higher
    misranked: list[str] = field(default_factory=list)
    forbidden_marked: int = 0  # (reply, move) pairs marked in the set
    forbidden_caught: int = 0
    missed: list[str] = field(default_factory=list)
    false_alarms: list[str] = field(default_factory=list)  # a forbidden move flagged in a reply marked as committing none
    clean_replies: int = 0
    by_grade: dict[str, list[int]] = field(default_factory=dict)

    @property
    def ranking_accuracy(self) -> float:
        return self.ranked / self.pairs if self.pairs else 0.0


def load_graded(path: Path) -> list[Graded]:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    out = []
    for item in data["items"]:
        for grade in GRADES:
            for reply in item[grade] if isinstance(item[grade], list) else [item[grade]]:
                if isinstance(reply, dict):
                    out.append(Graded(item["category"], item["scenario"], grade, reply["text"], tuple(reply.get("forbidden", ()))))
                else:
                    out.append(Graded(item["category"], item["scenario"], grade, reply))
    return out


def evaluate(training: Training, graded: list[Graded]) -> Report:
    report = Report()
    scored = []
    for g in graded:
        score = score_replies(training, g.category, training.scenario(g.category, g.scenario), [g.text])
        scored.append((g, score))
        report.by_grade.setdefault(g.grade, []).append(score.total)
        for move in g.forbidden:
            report.forbidden_marked += 1
            if move in score.forbidden:
                report.forbidden_caught += 1
            else:
                report.missed.append(f"{g.category} {g.scenario} {g.grade}: {move} not caught in “{g.text}”")
        if not g.forbidden:
            report.clean_replies += 1
            for move in score.forbidden:
                report.false_alarms.append(f"{g.category} {g.scenario} {g.grade}: {move} flagged in “{g.text}”")
    by_scenario: dict[tuple, list] = {}
    for g, score in scored:
        by_scenario.setdefault((g.category, g.scenario), []).append((g, score))
    for (category, number), items in by_scenario.items():
        for (a, sa), (b, sb) in combinations(items, 2):
            if a.grade == b.grade:
                continue
            better, worse = ((a, sa), (b, sb)) if GRADES.index(a.grade) < GRADES.index(b.grade) else ((b, sb), (a, sa))
            report.pairs += 1
            if better[1].total > worse[1].total:
                report.ranked += 1
            else:
                report.misranked.append(f"{category} {number}: {better[0].grade} {better[1].total} ≤ "
                                        f"{worse[0].grade} {worse[1].total}: “{better[0].text}” vs “{worse[0].text}”")
    return report


def format_report(report: Report, show: int = 20) -> str:
    lines = [f"pairwise ranking accuracy: {report.ranked}/{report.pairs} ({100 * report.ranking_accuracy:.1f} %)",
             f"forbidden moves caught: {report.forbidden_caught}/{report.forbidden_marked}"
             + (f" ({100 * report.forbidden_caught / report.forbidden_marked:.1f} %)" if report.forbidden_marked else ""),
             f"false alarms (a forbidden move flagged in a reply marked clean): {len(report.false_alarms)}/{report.clean_replies} replies"]
    for grade in GRADES:
        totals = report.by_grade.get(grade, [])
        if totals:
            lines.append(f"  {grade}: {len(totals)} replies, mean score {sum(totals) / len(totals):.1f}")
    for title, items in (("misranked", report.misranked), ("missed", report.missed), ("false alarms", report.false_alarms)):
        if items:
            lines.append(f"{title}:")
            lines += [f"  {x}" for x in items[:show]]
    return "\n".join(lines)
