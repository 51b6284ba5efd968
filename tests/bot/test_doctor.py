"""kefu doctor: one line per check, ok or what to fix; exit code 1 when any check fails."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session

from bot.storage.engine import connect
from bot.storage.schema import head
from telegram_harness import BotApiStub, free_port


@pytest.fixture(scope="module")
def accepting():
    stub = BotApiStub(accept=True)
    yield stub.url
    stub.close()


def doctor(tmp_path, env: dict | None = None) -> tuple[int, dict[str, list[str]]]:
    """Runs kefu doctor in tmp_path; returns its exit code and its lines by check name."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "TELEGRAM_"))}
    result = subprocess.run([sys.executable, "-m", "bot", "doctor"], cwd=tmp_path, env={**clean, **(env or {})},
                            capture_output=True, text=True, timeout=120)
    checks: dict[str, list[str]] = {}
    for line in result.stdout.splitlines():
        status, name, text = line.split(None, 2)
        checks.setdefault(name, []).append(f"{status} {text}")
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, checks


def test_a_fresh_folder_is_ready_for_kefu_chat(tmp_path):
    code, checks = doctor(tmp_path)
    assert code == 0
    assert list(checks) == ["settings", "content", "database", "telegram", "staff", "disk"]
    assert checks["settings"] == ["ok no kefu.toml, environment, defaults"]
    assert checks["content"][0].startswith("ok 13 categories")
    assert checks["database"] == [f"warn no database at {tmp_path / 'kefu.db'} yet: kefu chat or kefu telegram makes it there"]
    assert checks["telegram"][0].startswith("ok no TELEGRAM_BOT_TOKEN")
    assert checks["staff"][0].startswith("warn no staff chat") and checks["disk"][0].startswith("ok ")
    assert not (tmp_path / "kefu.db").exists()  # the doctor looks, it does not make


def test_a_database_kefu_made_has_its_schema(tmp_path):
    connect(f"sqlite:///{tmp_path / 'kefu.db'}").dispose()
    code, checks = doctor(tmp_path)
    assert code == 0
    assert checks["database"] == [f"ok SQLite {tmp_path / 'kefu.db'} answers"]
    assert checks["schema"] == [f"ok revision {head()}, the newest, every table and column in place"]


def test_a_column_taken_away_by_hand_is_named(tmp_path):
    connect(f"sqlite:///{tmp_path / 'kefu.db'}").dispose()
    with sqlite3.connect(tmp_path / "kefu.db") as db:
        db.execute("ALTER TABLE cases DROP COLUMN assigned_to")
    db.close()
    code, checks = doctor(tmp_path)
    assert code == 1
    assert checks["schema"][0].startswith("FAIL table cases lacks assigned_to: the database was changed by hand")


def test_an_older_and_a_newer_database_are_named_with_what_to_do(tmp_path):
    connect(f"sqlite:///{tmp_path / 'kefu.db'}").dispose()
    with sqlite3.connect(tmp_path / "kefu.db") as db:
        db.execute("DROP TABLE alembic_version")  # as made by a kefu from before the migrations
    db.close()
    code, checks = doctor(tmp_path)
    assert code == 1 and checks["schema"] == [f"FAIL from before the migrations, older than this kefu's ({head()}): "
                                              "run kefu db upgrade (after kefu backup)"]
    with sqlite3.connect(tmp_path / "kefu.db") as db:
        db.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        db.execute("INSERT INTO alembic_version VALUES ('9999')")
    db.close()
    code, checks = doctor(tmp_path)
    assert code == 1 and checks["schema"] == [f"FAIL revision 9999 is newer than this kefu's ({head()}): upgrade kefu"]


def test_an_unreachable_database_and_a_bad_setting_fail(tmp_path):
    code, checks = doctor(tmp_path, {"KEFU_DATABASE_URL": f"postgresql://kefu@127.0.0.1:{free_port()}/kefu"})
    assert code == 1 and checks["database"][0].startswith("FAIL cannot connect to postgresql+psycopg://kefu@127.0.0.1")
    code, checks = doctor(tmp_path, {"KEFU_GRACE_HOURS": "soon"})
    assert code == 1 and checks == {"settings": ["FAIL KEFU_GRACE_HOURS in the environment is 'soon': expected a number"]}


def test_the_token_is_asked_about_and_staff_chats_are_then_needed(tmp_path, accepting):
    env = {"TELEGRAM_BOT_TOKEN": "123456:TOKEN", "TELEGRAM_API_BASE_URL": accepting}
    code, checks = doctor(tmp_path, env)
    assert checks["telegram"] == ["ok token accepted: @TestNameBot (id 666), long polling"]
    assert code == 1 and checks["staff"][0].startswith("FAIL no staff chat: case cards go nowhere")
    refusing = BotApiStub(accept=False)
    try:
        code, checks = doctor(tmp_path, {**env, "TELEGRAM_API_BASE_URL": refusing.url})
    finally:
        refusing.close()
    assert code == 1 and checks["telegram"][0].startswith("FAIL Telegram refused TELEGRAM_BOT_TOKEN")
