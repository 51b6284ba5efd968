"""kefu backup and kefu restore on SQLite and PostgreSQL: a round trip loses nothing, a backup taken
while kefu writes is consistent, and mistakes are refused in one line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine
from sqlmodel import SQLModel

from bot import customers
from bot.backup import BackupError, backup, restore
from bot.casework import Casework
from bot.config import Settings
from bot.service import Service
from dialogs.conversation import Inbound


def everything(database_url: str) -> dict:
    """Every row of every kefu table, in key order, comparable across a round trip."""
    db = create_engine(database_url)
    tables = {}
    with db.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            rows = conn.execute(table.select().order_by(*table.primary_key.columns)).all()
            tables[table.name] = [tuple(v.replace(tzinfo=v.tzinfo or timezone.utc) if isinstance(v, datetime) else v
                                        for v in row) for row in rows]
    db.dispose()
    return tables


@pytest.fixture
def kept(database_url):
    """A database with a case, a staff reply, a photo, a rating and a staff member."""
    settings = Settings(database_url=database_url)
    service = Service.from_settings(settings)
    for line in ["货物滞留", "SH20261127", "13800138000"]:
        service.receive("telegram", "5001", Inbound(text=line))
    desk = Casework(service)
    number = desk.latest_case("telegram", "5001")
    desk.add_staff(11, "staff", chat_id=-100)
    desk.attach("telegram", "5001", "photo", "file-abc", {"caption": "外箱破损"}, "[照片] 外箱破损")
    desk.reply(number, 11, "已联系网点")
    desk.resolve(number, 11)
    desk.rate(number, 4, "telegram", "5001")
    service.store.db.dispose()
    return settings


def test_a_round_trip_loses_nothing(kept, tmp_path):
    before = everything(kept.database_url)
    assert sum(len(rows) for rows in before.values()) > 20
    kind = backup(kept, tmp_path / "kefu.backup")
    assert kind in ("sqlite", "postgresql")
    db = create_engine(kept.database_url)
    customers.erase(db, "5001")  # the day after the backup, things change
    db.dispose()
    assert everything(kept.database_url) != before
    assert restore(kept, tmp_path / "kefu.backup") == kind
    assert everything(kept.database_url) == before


def test_a_backup_is_never_written_over_a_file(kept, tmp_path):
    (tmp_path / "old.backup").write_text("keep me")
    with pytest.raises(BackupError, match="already exists"):
        backup(kept, tmp_path / "old.backup")
    assert (tmp_path / "old.backup").read_text() == "keep me"


def test_a_backup_of_the_other_kind_is_refused(kept, tmp_path):
    stray = tmp_path / "stray.backup"
    stray.write_bytes(b"PGDMP" if kept.database_url.startswith("sqlite") else b"SQLite format 3\x00")
    with pytest.raises(BackupError, match="is not an? (SQLite|PostgreSQL) backup"):
        restore(kept, stray)


def test_an_sqlite_backup_taken_while_kefu_writes_is_consistent(sqlite_url, tmp_path):
    settings = Settings(database_url=sqlite_url)
    service = Service.from_settings(settings)
    stop, turns = threading.Event(), []

    def write() -> None:
        while not stop.is_set() and len(turns) < 2000:
            service.receive("console", f"u{len(turns) % 5}", Inbound(text="帮助"))
            turns.append(1)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        for i in range(3):
            target = len(turns) + 5
            while len(turns) < target and writer.is_alive():
                time.sleep(0.01)
            backup(settings, tmp_path / f"during-{i}.backup")
            assert writer.is_alive()  # taken while kefu was writing
    finally:
        stop.set()
        writer.join()
    for i in range(3):
        with sqlite3.connect(tmp_path / f"during-{i}.backup") as copy:
            assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            # Each turn stores one message in and its replies together: a copy never has half a turn.
            unanswered = copy.execute(
                "SELECT count(*) FROM messages m WHERE direction = 'in' AND NOT EXISTS (SELECT 1 FROM messages o "
                "WHERE o.direction = 'out' AND o.conversation_id = m.conversation_id AND o.at = m.at)").fetchone()[0]
            assert unanswered == 0
            assert copy.execute("SELECT count(*) FROM messages").fetchone()[0] > 0
        copy.close()


def test_the_commands(kept, tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}, "KEFU_DATABASE_URL": kept.database_url}

    def kefu(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot", *args], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=120, stdin=subprocess.DEVNULL)

    before = everything(kept.database_url)
    made = kefu("backup", str(tmp_path / "nightly.backup"))
    assert made.returncode == 0 and made.stdout.startswith("OK: "), made.stderr
    refused = kefu("restore", str(tmp_path / "nightly.backup"))
    assert refused.returncode == 2 and "add --yes" in refused.stderr
    done = kefu("restore", str(tmp_path / "nightly.backup"), "--yes")
    assert done.returncode == 0, done.stderr
    after = everything(kept.database_url)
    assert after.pop("audit_log")[-1][1] == "restore"  # the restore itself is audited
    before.pop("audit_log")
    assert after == before
    missing = kefu("restore", str(tmp_path / "nope.backup"), "--yes")
    assert missing.returncode == 2 and missing.stderr.strip() == f"kefu: no backup file at {tmp_path / 'nope.backup'}"
