"""Folding a customer's free text to one spelling before it is read: plain-width characters, simplified Chinese."""

from __future__ import annotations

import unicodedata

import opencc

# opencc-python-reimplemented: pure Python, imports in a few milliseconds (the C++ `opencc` wheel is not needed).
_T2S = opencc.OpenCC("t2s")


def fold(text: str) -> str:
    """Returns the text with full-width digits, letters and punctuation made plain (NFKC)
    and traditional characters made simplified; case and spacing are kept."""
    return _T2S.convert(unicodedata.normalize("NFKC", text))
