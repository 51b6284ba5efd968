"""Scoring a trainee's replies against the manual: answer points, required moves, courtesy, forbidden moves."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from dialogs.folding import fold
from dialogs.practice.content import Cues, Forbidden, Scenario, Training

_CLAUSE_BREAK = re.compile(r"[，。,.!！?？；;]")
# Characters that say nothing about a topic: a reply sharing only these with the customer is not "on it".
_EMPTY = set("我你您他她它们的了是在这那个就也都吗呢吧啊哦呀好请谢先生女士小姐一下有没不会能要可以和给")


def _words(text: str) -> set[str]:
    """The two-character words of a text (CJK only), leaving out pairs of empty characters."""
    chars = [c if "\u4e00" <= c <= "\u9fff" else " " for c in text]
    pairs = {a + b for a, b in zip(chars, chars[1:]) if a != " " and b != " "}
    return {p for p in pairs if not (p[0] in _EMPTY or p[1] in _EMPTY)}


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


_SENTENCE_END = re.compile(r"[。.!！?？\n]")


def _committed(rule: Forbidden, text: str) -> str | None:
    """The words of text that commit the forbidden move, or None."""
    for pattern in [*rule.patterns, *rule.absolute]:
        absolute = pattern in rule.absolute
        for m in _regex(pattern).finditer(text):
            rest = _SENTENCE_END.split(text[m.end():])[0]
            if _found(rule.retracted_by, rest):
                continue  # quoted to say it was wrong: 让您自己去打电话是我们不对
            if rule.excused_by and _found(rule.excused_by, _SENTENCE_END.split(text[:m.start()])[-1]):
                continue  # said under a condition that makes it true: 如果是我们的责任，运费我们承担
            if absolute:
                return m.group(0)
            window = text[max(0, m.start() - 4):m.end()]
            if any(neg in window for neg in rule.negators):
                continue
            if rule.customer_subject and _our_subject(text, m.start()):
                continue
            return m.group(0)
    return None


# 我 or 您 as the subject of what follows: not an object (帮您, 给您…), a possessive (您的) or a greeting (您好).
_SUBJECT = re.compile(r"(?<![帮给为替让叫请跟和向对告诉通知联系])(我|您|你)(?![好的])")


_ON_BEHALF = "帮替代为"


def _our_subject(text: str, start: int) -> bool:
    """Whether what starts at start is something we do: the nearest subject before it in its sentence is
    我 (我已经记下您的单号，这就给始发站打电话催), and it does not name 您 itself (我建议您直接找外协)."""
    subjects = _SUBJECT.findall(_SENTENCE_END.split(text[:start])[-1])
    if text[start] in "您你":
        # 帮您联系网点 / 马上替您问外协: 您 is whom it is done for, and the doer is us unless said otherwise.
        return start > 0 and text[start - 1] in _ON_BEHALF and (not subjects or subjects[-1] == "我")
    return bool(subjects) and subjects[-1] == "我"


def _brushed_off(rule: Forbidden, text: str, acted: bool) -> str | None:
    """The words of text that only ask for patience or understanding, when neither it nor an earlier
    reply (acted) does anything about the complaint; else None."""
    if not rule.brush_off or acted or _found(rule.actions, text):
        return None
    words = _found(rule.brush_off, text)
    return "、".join(words) if words else None


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


def score_replies(training: Training, category: str, scenario: Scenario, replies: list[str],
                  customer: list[str] | None = None, earlier: list[str] | None = None) -> Score:
    """Scores a session's replies so far (points and moves count across them, courtesy and forbidden
    moves in each); customer: the customer's lines so far (default: the scenario's opening); earlier:
    replies before these that are not scored but show whether the complaint was already acted on."""
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
    made_nothing = not any(c.passed for c in checks if c.kind in ("point", "move"))
    about = [*(customer or [scenario.opening.text]), *training.topics.get(category, ())]
    said = set().union(*(_words(fold(line)) for line in about))
    before = [fold(r) for r in earlier or ()]
    off_topic = not before and made_nothing and not (_words(folded[0]) & said)  # the session's first reply only
    for fid, rule in rules.forbidden.items():
        if category in rule.except_categories:
            continue
        hits = [(i, f"“{w}”") for i, text in enumerate(folded) if (w := _committed(rule, text))]
        if rule.brush_off:
            acted = any(_found(rule.actions, text) for text in before)
            committed = {i for i, _ in hits}
            for i, text in enumerate(folded):
                if i not in committed and (w := _brushed_off(rule, text, acted)):
                    hits.append((i, f"只有“{w}”，没有任何处理或承诺"))
                acted = acted or bool(_found(rule.actions, text))
            hits.sort()
        if hits:
            checks.append(Check("forbidden", fid, rule.label, False,
                                "；".join(f"第{i + 1}句：{w}" for i, w in hits) + f"（{rule.source}）"))
        elif rule.off_topic and off_topic and not _found(rule.actions, folded[0]):
            checks.append(Check("forbidden", fid, rule.label, False,
                                "回复没有回应客户反映的问题：没有回答要点，没有该做的处理，也没有提到客户说的事"))
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
