"""kefu bench runs every section and prints them as one JSON object. Speed is the benchmark's to
print, never a test's to assert: no figure here is compared with a time."""

from __future__ import annotations

import json
import os
import subprocess
import sys


def test_kefu_bench_quick_prints_every_section_with_figures(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    ran = subprocess.run([sys.executable, "-m", "bot", "bench", "--quick", "--json"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
    assert ran.returncode == 0, ran.stderr
    figures = json.loads(ran.stdout)

    def measured(row: dict) -> None:
        assert row["turns"] > 0 and row["turns_per_s"] > 0 and row["p50_ms"] > 0 and row["p99_ms"] >= row["p50_ms"]
        assert row["cpu_ms"] > 0

    measured(figures["synthetic"])
    for kind, per in (("menu", 6), ("free_text", 5)):
        row = figures["sqlite"][kind]
        measured(row)
        assert row["cases_opened"] == row["turns"] // per  # every conversation went through to its case
    assert "skipped" not in figures["postgres"], figures["postgres"]  # the suite has a server (tests/conftest.py)
    for workers in (1, 2, 4):
        row = figures["postgres"][f"{workers}_workers"]
        measured(row)
        assert row["cases_opened"] == row["turns"] // 6
    telegram = figures["telegram"]
    for peer in ("kefu", "conversation_handler", "conversation_handler_durable", "conversation_handler_committed"):
        measured(telegram[peer])
        assert telegram[peer]["bot_api_calls"] > 0
    assert telegram["kefu"]["errors"] == 0 and telegram["kefu"]["cases_opened"] == telegram["kefu"]["turns"] // 6
    assert figures["memory"]["rss_mb"] > 0 and figures["memory"]["conversations"] > 0
    assert 0 < figures["startup"]["to_service_ready_s"] <= figures["startup"]["to_first_reply_s"]
    assert all(value > 0 for ratio in figures["ratios"].values() for value in ratio.values())
    assert len(figures["goals"]) == 7 and all(isinstance(goal["met"], bool) for goal in figures["goals"])
