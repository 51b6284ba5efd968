"""Backups of the configured database while kefu runs, and putting one back: SQLite's online backup
API for SQLite, pg_dump and pg_restore (custom format) for PostgreSQL."""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.storage.database import DatabaseError, one_line, sqlite_file

SQLITE_MAGIC, PG_MAGIC = b"SQLite format 3\x00", b"PGDMP"


class BackupError(Exception):
    """A backup or restore that cannot be done: one line for the operator."""


def pg_tool(name: str) -> str:
    """pg_dump or pg_restore: from PATH, else the newest in Debian's /usr/lib/postgresql/*/bin
    (a newer one can dump an older server, never the other way round)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[4]))
    tool = shutil.which(name) or (found[-1] if found else None)
    if tool is None:
        raise BackupError(f"{name} not found: install PostgreSQL's client programs (Debian: postgresql-client)")
    return tool


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """The database as libpq names it, and the environment that carries its password (kept off the
    command line, which other users of the machine can read)."""
    url = make_url(database_url)
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return plain, env


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {one_line(result.stderr.strip() or result.returncode)}")


def backup(settings: Settings, target: Path) -> str:
    """Writes a consistent copy of the database to target (never over an existing file); returns its kind."""
    if target.exists():
        raise BackupError(f"{target} already exists: choose a new file name")
    if not target.parent.is_dir():
        raise BackupError(f"the folder {target.parent} does not exist")
    path = sqlite_file(settings.database_url)
    partial = target.with_name(target.name + ".partial")
    if path is not None:
        if not path.exists():
            raise DatabaseError(f"no database at {path} ({settings.origin('database_url')})")
        # The online backup copies page by page and restarts when a writer changes the source mid-way,
        # so the copy is one consistent moment even while kefu runs.
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as source, sqlite3.connect(partial) as copy:
            source.backup(copy)
        copy.close()
        source.close()
        kind = "sqlite"
    elif make_url(settings.database_url).get_backend_name() == "postgresql":
        dbname, env = _libpq(settings.database_url)
        _run([pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={partial}",
              f"--dbname={dbname}"], env)
        kind = "postgresql"
    else:
        raise BackupError(f"cannot back up a {make_url(settings.database_url).get_backend_name()} database")
    partial.replace(target)  # a backup file is whole or absent
    return kind


def restore(settings: Settings, source: Path) -> str:
    """Replaces the database's contents with a backup made by backup(); returns its kind."""
    if not source.is_file():
        raise BackupError(f"no backup file at {source}")
    with source.open("rb") as f:
        head = f.read(16)
    path = sqlite_file(settings.database_url)
    if path is not None:
        if not head.startswith(SQLITE_MAGIC):
            raise BackupError(f"{source} is not an SQLite backup, and the database is SQLite ({path})")
        if not path.parent.is_dir():
            raise BackupError(f"the folder {path.parent} does not exist")
        with sqlite3.connect(f"file:{source}?mode=ro", uri=True) as backup_db, sqlite3.connect(path) as live:
            backup_db.backup(live)  # one transaction on the live file: readers see the old or the new
        backup_db.close()
        live.close()
        return "sqlite"
    if make_url(settings.database_url).get_backend_name() != "postgresql":
        raise BackupError(f"cannot restore into a {make_url(settings.database_url).get_backend_name()} database")
    if not head.startswith(PG_MAGIC):
        raise BackupError(f"{source} is not a PostgreSQL backup (pg_dump custom format), and the database is PostgreSQL")
    dbname, env = _libpq(settings.database_url)
    _run([pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
          f"--dbname={dbname}", str(source)], env)
    return "postgresql"
