"""The database schema's versions, kept by Alembic (bot/migrations/versions): a new database is made at
the newest; an older one is refused with one line until `kefu db upgrade` brings it up; one made before
the migrations existed (kefu's first builds) is first completed to the baseline, then upgraded."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Every revision in bot/migrations/versions, oldest first (a test checks they agree). Kept here so a
# start with a current database never imports Alembic (most of a second).
REVISIONS = ("0001", "0002", "0003")
BASELINE, HEAD = REVISIONS[0], REVISIONS[-1]
# The tables of the baseline (revision 0001): what a database from before the migrations is completed to.
BASELINE_TABLES = ("conversations", "cases", "staff", "attachments", "telegram_inbox", "audit_log", "kefu_meta",
                   "training_sessions", "case_counters", "staff_modes", "messages", "events", "draft_reviews")


class SchemaError(Exception):
    """The database's schema is not this kefu's: one line saying what to do."""


def _config(connection: Connection | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    """The newest revision this kefu knows."""
    return HEAD


def revision(connection: Connection) -> str | None:
    """The revision the database is at (None: not managed by the migrations, or empty)."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def state(connection: Connection) -> str:
    """new (no kefu tables), current, behind (an older revision), unmanaged (from before the migrations),
    or ahead (a revision this kefu does not know: a newer kefu made it)."""
    tables = set(inspect(connection).get_table_names()) - {"alembic_version"}
    if not tables & set(BASELINE_TABLES):
        return "new"
    found = revision(connection)
    if found is None:
        return "unmanaged"
    if found == HEAD:
        return "current"
    return "behind" if found in REVISIONS else "ahead"


def check(connection: Connection) -> None:
    """Refuses a database this kefu cannot use as it is (SchemaError with what to run); makes a new one."""
    found = state(connection)
    if found == "new":
        from alembic import command

        command.upgrade(_config(connection), "head")
    elif found in ("behind", "unmanaged"):
        at = revision(connection) or "from before the migrations"
        raise SchemaError(f"the database schema is older than this kefu ({at}, needs {head()}): "
                          "run `kefu db upgrade` (after `kefu backup`)")
    elif found == "ahead":
        raise SchemaError(f"the database schema ({revision(connection)}) is newer than this kefu ({head()}): "
                          "upgrade kefu")


def upgrade(connection: Connection) -> tuple[str | None, str]:
    """Brings the database to the newest revision; returns (from, to). A database from before the
    migrations gets the baseline's missing tables and columns first, and is stamped as the baseline."""
    from alembic import command

    before = revision(connection)
    if state(connection) == "unmanaged":
        from bot.storage.tables import METADATA

        METADATA.create_all(connection, tables=[METADATA.tables[t] for t in BASELINE_TABLES])
        add_missing_columns(connection)
        command.stamp(_config(connection), BASELINE)
    command.upgrade(_config(connection), "head")
    return before, HEAD


# Columns added to existing tables before the migrations existed: a database from those builds gets
# them when `kefu db upgrade` completes it to the baseline (upgrade above). Later changes are revisions.
_ADDED_COLUMNS = {"conversations": {"memory": "JSON"},
                  "telegram_inbox": {"attempts": "INTEGER NOT NULL DEFAULT 0", "error": "TEXT",
                                     "retry_at": "TIMESTAMP WITH TIME ZONE"}}


def add_missing_columns(conn) -> None:
    inspector = inspect(conn)
    for table, columns in _ADDED_COLUMNS.items():
        present = {c["name"] for c in inspector.get_columns(table)}
        for name, kind in columns.items():
            if name not in present:
                conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
