"""Scoring a trainee's replies against the manual: answer points, required moves, courtesy, forbidden moves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from dialogs.folding import fold
from dialogs.practice.content import Cues, Forbidden, Scenario, Training

_CLAUSE_BREAK = re.compile(r"[，。,.!！?？；;]")


@dataclass(frozen=True)
class Check:
    """One thing looked for: passed or missed, and why (the words that matched, or what was missing)."""

    kind: str  # point, move, courtesy, forbidden
    id: str
    label: str
    passed: bool  # for a forbidden move: True when it was NOT committed
    reason: str


@dataclass(frozen=True)
class Score:
    total: int  # 0-100
    checks: list[Check] = field(default_factory=list)

    @property
    def forbidden(self) -> list[str]:
        """The forbidden moves committed."""
        return [c.id for c in self.checks if c.kind == "forbidden" and not c.passed]

    def of(self, kind: str) -> list[Check]:
        return [c for c in self.checks if c.kind == kind]


@lru_cache(maxsize=2048)
def _regex(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _found(patterns: list[str], text: str) -> list[str]:
    """The words in text that match any of the patterns, in the order of the patterns."""
    out: list[str] = []
    for pattern in patterns:
        m = _regex(pattern).search(text)
        if m and m.group(0) not in out:
            out.append(m.group(0))
    return out


def _committed(rule: Forbidden, text: str) -> str | None:
    """The words of text that commit the forbidden move, or None."""
    for pattern in rule.patterns:
        for m in _regex(pattern).finditer(text):
            window = text[max(0, m.start() - 4):m.end()]
            if any(neg in window for neg in rule.negators):
                continue
            if rule.customer_subject:
                before = _CLAUSE_BREAK.split(text[:m.start()])[-1]
                if "我" in before:
                    continue
            return m.group(0)
    return None


def _courtesy(cid: str, rule: Cues, replies: list[str]) -> Check:
    def one(text: str) -> tuple[bool, str]:
        bad = _found(rule.against, text)
        if bad:
            return False, f"出现“{'、'.join(bad)}”"
        if rule.cues:
            good = _found(rule.cues, text)
            return (True, f"找到“{'、'.join(good)}”") if good else (False, "没有找到")
        return True, "没有发现"

    if rule.first_reply:
        passed, why = one(replies[0])
    elif rule.every_reply:
        results = [one(r) for r in replies]
        failed = [(i, why) for i, (ok, why) in enumerate(results) if not ok]
        passed = not failed
        why = results[0][1] if passed else "；".join(f"第{i + 1}句{why}" for i, why in failed)
    else:
        results = [one(r) for r in replies]
        hits = [why for ok, why in results if ok]
        bad = [why for ok, why in results if not ok and why.startswith("出现")]
        passed = bool(hits) and not bad
        why = bad[0] if bad else (hits[0] if hits else "没有找到")
    return Check("courtesy", cid, rule.label, passed, why)


def score_replies(training: Training, category: str, scenario: Scenario, replies: list[str]) -> Score:
    """Scores a session's replies so far (points and moves count across them, courtesy and forbidden
    moves in each)."""
    rules = training.scoring
    folded = [fold(r) for r in replies]
    if not folded:
        return Score(0)
    whole = "\n".join(folded)
    checks: list[Check] = []
    for pid, point in training.points_of(category, scenario).items():
        words = _found(point.cues, whole)
        checks.append(Check("point", pid, point.label, bool(words),
                            f"找到“{'、'.join(words)}”" if words else "没有提到"))
    for mid in rules.categories[category].moves:
        move = rules.moves[mid]
        words = _found(move.cues, whole)
        checks.append(Check("move", mid, move.label, bool(words),
                            f"找到“{'、'.join(words)}”" if words else "没有做到"))
    for cid, rule in rules.courtesy.items():
        checks.append(_courtesy(cid, rule, folded))
    for fid, rule in rules.forbidden.items():
        if category in rule.except_categories:
            continue
        hits = [(i, w) for i, text in enumerate(folded) if (w := _committed(rule, text))]
        if hits:
            checks.append(Check("forbidden", fid, rule.label, False,
                                "；".join(f"第{i + 1}句：“{w}”" for i, w in hits) + f"（{rule.source}）"))
        else:
            checks.append(Check("forbidden", fid, rule.label, True, "没有发现"))
    return Score(_total(training, checks), checks)


def _total(training: Training, checks: list[Check]) -> int:
    w = training.scoring.weights

    def share(kind: str) -> float:
        items = [c for c in checks if c.kind == kind]
        return sum(c.passed for c in items) / len(items) if items else 1.0

    raw = (w.points * share("point") + w.moves * share("move") + w.courtesy * share("courtesy")) / (w.points + w.moves + w.courtesy)
    total = round(100 * raw)
    if any(c.kind == "forbidden" and not c.passed for c in checks):
        total = min(total, training.scoring.forbidden_cap)
    return total
