"""Loads the golden conversations in tests/data/conversations.yaml for the tests that replay them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

GOLDEN = yaml.safe_load((Path(__file__).parent / "data" / "conversations.yaml").read_text(encoding="utf-8"))


def golden_params():
    return [pytest.param(conv, id=conv["name"]) for conv in GOLDEN]


def where(category: str | None, state: str) -> str:
    return f"{category}.{state}" if category else state
