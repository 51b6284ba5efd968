"""Chart geometry for the pages' inline SVG (drawn by templates/_charts.html): no script, no CDN."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    length: float  # 0-100, the share of the longest bar
    y: int  # the bar's row in the chart, in pixels


ROW = 26  # pixels per bar


def bars(pairs: list[tuple[str, float]]) -> list[Bar]:
    """Horizontal bars, the longest at full length."""
    top = max((value for _, value in pairs), default=0) or 1
    return [Bar(label, value, 100 * value / top, i * ROW) for i, (label, value) in enumerate(pairs)]


def polyline(values: list[float], width: int = 300, height: int = 80, top: float = 100) -> str:
    """The points of a line chart of values from 0 to top, left to right, for <polyline points=…>."""
    if not values:
        return ""
    step = width / max(1, len(values) - 1)
    return " ".join(f"{i * step:.1f},{height - height * v / top:.1f}" for i, v in enumerate(values))
