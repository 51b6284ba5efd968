"""Folding a customer's free text to one spelling before it is read: plain-width characters, simplified Chinese."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import opencc

# opencc-python-reimplemented: pure Python, imports in a few milliseconds (the C++ `opencc` wheel is not needed).
_T2S = opencc.OpenCC("t2s")


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


@lru_cache(maxsize=4096)  # the content's own texts are folded again and again
def fold(text: str) -> str:
    """Returns the text with full-width digits, letters and punctuation made plain (NFKC)
    and traditional characters made simplified; case and spacing are kept."""
    text = unicodedata.normalize("NFKC", text)
    return _T2S.convert(text) if not _CONVERTIBLE.isdisjoint(text) else text
