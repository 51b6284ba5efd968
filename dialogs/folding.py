"""Folding a customer's free text to one spelling before it is read: plain-width characters, simplified Chinese."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import opencc

# opencc-python-reimplemented: pure Python, imports in a few milliseconds (the C++ `opencc` wheel is not needed).
_T2S = opencc.OpenCC("t2s")
SHORT = 256  # texts up to this long are remembered: a turn folds the same cues, options and earlier messages again


def _convertible() -> frozenset[str]:
    """Every character that appears in a key of the t2s dictionaries: a text with none of them is already
    simplified, and the (slow, pure Python) conversion is skipped."""
    _T2S.convert("")  # loads the dictionaries
    chars: set[str] = set()
    stack = list(_T2S._dict_chain_data)
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, tuple):
            stack.extend(part for part in item if isinstance(part, (dict, list, tuple)))
        elif isinstance(item, dict):
            for key in item:
                chars.update(key)
    return frozenset(chars)


_CONVERTIBLE = _convertible()


def fold(text: str) -> str:
    """Returns the text with full-width digits, letters and punctuation made plain (NFKC)
    and traditional characters made simplified; case and spacing are kept."""
    return _fold_short(text) if len(text) <= SHORT else _fold(text)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return _T2S.convert(text) if not _CONVERTIBLE.isdisjoint(text) else text


# A turn folds about twenty texts (the FAQ cues, the options, the complaint's earlier messages), most
# of them the same each time. At most a few MB.
_fold_short = lru_cache(maxsize=8192)(_fold)
