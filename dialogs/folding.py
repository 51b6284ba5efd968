"""Folding a customer's free text to one spelling before it is read: plain-width characters, simplified Chinese."""

from __future__ import annotations

import unicodedata
from functools import lru_cache

import opencc

# opencc-python-reimplemented: pure Python, imports in a few milliseconds (the C++ `opencc` wheel is not needed).
_T2S = opencc.OpenCC("t2s")
SHORT = 256  # texts up to this long are remembered: a turn folds the same cues, options and earlier messages again


def fold(text: str) -> str:
    """Returns the text with full-width digits, letters and punctuation made plain (NFKC)
    and traditional characters made simplified; case and spacing are kept."""
    return _fold_short(text) if len(text) <= SHORT else _fold(text)


def _fold(text: str) -> str:
    return _T2S.convert(unicodedata.normalize("NFKC", text))


# A turn folds about twenty texts (the FAQ cues, the options, the complaint's earlier messages), most
# of them the same each time; the pure-Python converter takes ~0.1 ms for each. At most a few MB.
_fold_short = lru_cache(maxsize=8192)(_fold)
