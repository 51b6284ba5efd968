"""The schema's versions (Alembic, bot/migrations): a new database is made at the newest revision and
matches the models exactly; an older one is refused with one line until `kefu db upgrade`, which keeps
its data; a newer one is refused. On SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlmodel import SQLModel, select

from bot.config import Settings
from bot.service import Service
from bot.storage import schema
from bot.storage.database import DatabaseError, open_database
from bot.storage.engine import connect
from bot.storage.schema import REVISIONS, _config
from bot.storage.tables import CaseRow
from dialogs.conversation import Inbound


def kefu(args: list[str], database_url: str, lines: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "KEFU_DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "bot", *args], input=lines, capture_output=True, text=True, env=env,
                          timeout=120)


def test_the_revisions_kefu_names_are_the_ones_on_disk():
    scripts = ScriptDirectory.from_config(_config())
    assert tuple(reversed([s.revision for s in scripts.walk_revisions()])) == REVISIONS
    assert scripts.get_current_head() == schema.HEAD


def test_a_new_database_is_made_at_the_newest_revision_and_matches_the_models(database_url):
    engine = connect(database_url)
    with engine.connect() as conn:
        assert schema.state(conn) == "current" and schema.revision(conn) == schema.HEAD
        differences = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)
    assert differences == []  # a model changed without a revision would show here


def _make_old(database_url: str) -> None:
    """A database as kefu's builds before the migrations left it: no alembic_version, no case_counters,
    conversations without the memory column; with a case in it."""
    service = Service.from_settings(Settings(database_url=database_url))
    for message in ["货放你们那三天了还不发", "12345678", "13800138000"]:
        service.receive("console", "old", Inbound(text=message))
    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
        conn.execute(text("DROP TABLE case_counters"))
        conn.execute(text("DROP TABLE web_users"))  # the supervisor pages came after the migrations
        conn.execute(text("DROP TABLE case_marks"))
        conn.execute(text("DROP TABLE telegram_outbox"))  # so did the outbox and the inbox's sender
        conn.execute(text("DROP INDEX ix_telegram_inbox_user_key"))
        conn.execute(text("ALTER TABLE telegram_inbox DROP COLUMN user_key"))
        conn.execute(text("ALTER TABLE conversations DROP COLUMN memory"))
    engine.dispose()


def test_an_older_database_is_refused_until_kefu_db_upgrade_which_keeps_its_data(database_url):
    _make_old(database_url)
    with pytest.raises(DatabaseError) as refused:
        open_database(Settings(database_url=database_url))
    assert "older than this kefu (from before the migrations" in str(refused.value)
    assert "run `kefu db upgrade`" in str(refused.value) and "\n" not in str(refused.value)
    chat = kefu(["cases"], database_url)
    assert chat.returncode != 0 and "run `kefu db upgrade`" in chat.stderr and "Traceback" not in chat.stderr

    upgraded = kefu(["db", "upgrade"], database_url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert upgraded.stdout.strip() == f"OK: from before the migrations → {schema.HEAD}"
    assert kefu(["db", "upgrade"], database_url).stdout.strip() == f"OK: already at {schema.HEAD}"

    service = Service.from_settings(Settings(database_url=database_url))  # opens now, and works on
    for message in ["货物滞留", "87654321", "13900001111"]:
        service.receive("console", "new", Inbound(text=message))
    with service.store.session() as session:
        cases = session.exec(select(CaseRow).order_by(CaseRow.id)).all()
    assert [c.waybill for c in cases] == ["12345678", "87654321"] and cases[1].number.endswith("0002")


def test_a_newer_database_is_refused(database_url):
    engine = connect(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    engine.dispose()
    with pytest.raises(DatabaseError) as refused:
        open_database(Settings(database_url=database_url))
    assert f"the database schema (9999) is newer than this kefu ({schema.HEAD}): upgrade kefu" in str(refused.value)
