"""Understanding short answers: which offered option a message means, and whether a fact is valid."""

from __future__ import annotations

import re
from typing import Sequence

from dialogs.entities import number
from dialogs.folding import fold
from dialogs.schema import FactType

# An option's number however it is said: 2, 第2个, 选2, 选二, 就2吧, 第二项, 二
_NUMBER = re.compile(r"^(?:我)?(?:选|选择|就选|就|要)?第?(\d{1,3}|[一二两三四五六七八九十]{1,3})(?:个|项|号|条|种)?(?:吧|啊|呀|的)?[.、。)!！]?$")


def normalize(text: str) -> str:
    """Folds full-width letters, digits and punctuation to their plain forms and traditional
    characters to simplified ("貨物滯留" picks 货物滞留), and trims."""
    return fold(text).strip()


def _option_index(said: str) -> int:
    """The number of "2" or "二" (up to 99 in words: 十二, 二十)."""
    if said.isdigit():
        return int(said)
    value = number(said)
    return int(value) if value is not None and value == int(value) else 0


def is_number(text: str) -> bool:
    """Tells whether a message is only an option's number ("2", "第2个")."""
    return bool(_NUMBER.match(normalize(text)))


def option_number(text: str) -> int | None:
    """The number a message that is only an option's number gives ("第2个" → 2), else None."""
    match = _NUMBER.match(normalize(text))
    return _option_index(match.group(1)) if match else None


def pick_option(text: str, choices: Sequence[Sequence[str]]) -> int | None:
    """Returns the index of the choice a message means: its number (from 1), or a unique name match.

    Each choice is a list of names (label first, then aliases)."""
    said = normalize(text).casefold()
    if not said:
        return None
    numbered = _NUMBER.match(said)
    if numbered:
        index = _option_index(numbered.group(1)) - 1
        return index if 0 <= index < len(choices) else None
    names = [[normalize(n).casefold() for n in names] for names in choices]
    exact = [i for i, ns in enumerate(names) if said in ns]
    if len(exact) == 1:
        return exact[0]
    # "我要投诉服务态度" names one choice; "态度" is part of one: both are clear if only one fits.
    partial = [i for i, ns in enumerate(names) if any(n in said or (len(said) >= 2 and said in n) for n in ns)]
    if len(partial) > 1:
        # "需要" is in both "需要，登记搬运服务" and "不需要了", but only the first begins with it.
        partial = [i for i in partial if any(n.startswith(said) for n in names[i])]
    return partial[0] if len(partial) == 1 else None


def pick_by_words(text: str, choices: Sequence[Sequence[str]]) -> int | None:
    """Returns the index of the choice whose words a message uses ("开单的" → 托运窗口人员). Of words that
    overlap, the longest counts (没保价 over 保价); of words apart, the one said last ("不需要 我就是投诉他":
    the complaint); None when none is found or two choices tie."""
    said = normalize(text).casefold()
    found = []  # (start, end, choice)
    for i, words in enumerate(choices):
        for word in words:
            word = normalize(word).casefold()
            start = _said_at(said, word) if word else -1
            if start != -1:
                found.append((start, start + len(word), i))
    kept = [f for f in found if not any(o[0] <= f[0] and f[1] <= o[1] and o[1] - o[0] > f[1] - f[0] for o in found)]
    if not kept:
        return None
    last = max(start for start, _, _ in kept)
    latest = {i for start, end, i in kept if end > last}  # the words said last, and any that reach past their start
    return latest.pop() if len(latest) == 1 else None


_DENIED = re.compile(r"[不没别未无]\S?$")


def _said_at(said: str, word: str) -> int:
    """Where the message uses the word other than denied ("不给搬上楼" does not ask for carrying), or -1;
    a denial that is half of a whether-question ("不知道有没有保价": 没有保价 is not said) does not count."""
    start = said.find(word)
    while start != -1:
        whether = word[0] in "不没" and start > 0 and said[start - 1] == word[1:2]
        if not whether and (word[0] in "不没别未无" or not _DENIED.search(said[max(0, start - 2):start])):
            return start
        start = said.find(word, start + 1)
    return -1


def check_fact(text: str, fact_type: FactType, options: Sequence[str] | None) -> str | None:
    """Returns the value to keep for a fact, or None when the answer is not valid."""
    value = normalize(text)
    if fact_type.kind == "choice":
        index = pick_option(value, [[o] for o in options or ()])
        return None if index is None else options[index]  # type: ignore[index]
    if fact_type.kind == "pattern":
        compact = value.translate({ord(c): None for c in fact_type.strip})
        return compact if re.fullmatch(fact_type.pattern or "", compact) else None
    # Free text keeps the customer's own characters, only trimmed.
    kept = text.strip()
    return kept if fact_type.min_length <= len(kept) <= fact_type.max_length else None


_DENIED_NUMBER = re.compile(r"(?:不是|而不是|并不是)$")


_BETWEEN_LISTED = re.compile(r"[\s,，、;；/和跟及与]*(?:\d{1,2}\s*[.、)）:：])?[\s,，、;；/和跟及与]*")


def _placed(text: str, numbers: Sequence[str]) -> list[tuple[int, str]] | None:
    """Where each number stands in the text (upper case), in the text's order; None when one is not in it."""
    placed = sorted((text.find(n.upper()), n) for n in numbers)
    return None if any(at < 0 for at, _ in placed) else placed


def meant_numbers(text: str, numbers: Sequence[str], corrected: bool) -> list[str]:
    """The numbers a message gives (phones, waybills), the one it means first: a number said after 不是 is the
    wrong one ("是13859001234不是13859001243"); of the rest, the one said last when the message corrects
    itself ("13812345678，不对不对，是13812345687"), else the first."""
    compact = re.sub(r"[\s\-,，。、:：]", "", fold(text)).upper()
    placed = _placed(compact, numbers)
    if placed is None:
        return list(numbers)  # told in another message: their order stands
    kept = [(at, n) for at, n in placed if not _DENIED_NUMBER.search(compact[max(0, at - 4):at])]
    ordered = [n for _, n in (reversed(kept) if corrected else kept)] or list(numbers)
    return ordered + [n for n in numbers if n not in ordered]


def listed_numbers(text: str, numbers: Sequence[str]) -> bool:
    """Whether a message lists two or more numbers one after another ("SH…34、SH…35", "1. SH…34 2. SH…35"), nothing
    but marks between them: one lot, not a number told for each of two problems (SH…30滞留没发，SH…31到了没人送)."""
    compact = fold(text).upper()
    placed = _placed(compact, numbers) if len(numbers) > 1 else None
    return placed is not None and all(_BETWEEN_LISTED.fullmatch(compact[at + len(n):nxt])
                                      for (at, n), (nxt, _) in zip(placed, placed[1:]))
