"""Opening the configured database for a command, with one clear line when it cannot be opened,
and never a new empty SQLite file where the operator did not expect one."""

from __future__ import annotations

import sys
from pathlib import Path

from sqlalchemy.engine import Engine as DbEngine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from bot.config import Settings
from bot.storage.engine import connect


class DatabaseError(Exception):
    """The database cannot be used: said in one line for the operator."""


def sqlite_file(database_url: str) -> Path | None:
    """The file of an SQLite database (absolute), or None for another database or an in-memory one."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve()


def shown(database_url: str) -> str:
    """The URL without its password, for messages."""
    return make_url(database_url).render_as_string(hide_password=True)


def open_database(settings: Settings, create: bool = True) -> DbEngine:
    """Connects and creates missing tables. create=False (commands that only read or copy): a missing
    SQLite file is an error, not a new empty database."""
    where = f"{shown(settings.database_url)} (from {settings.origin('database_url')})"
    path = sqlite_file(settings.database_url)
    if path is not None and not path.exists():
        if not create:
            raise DatabaseError(f"no database at {path} (from {settings.origin('database_url')}): point the setting "
                                "at kefu's database, or start kefu chat or kefu telegram to make a new one there")
        if not path.parent.is_dir():
            raise DatabaseError(f"cannot make the database {path}: the folder {path.parent} does not exist")
        print(f"kefu: new database {path}", file=sys.stderr)
    from bot.storage.schema import SchemaError

    try:
        return connect(settings.database_url, synchronous=settings.sqlite_synchronous, checkpoints=True)
    except SchemaError as exc:
        raise DatabaseError(f"{where}: {exc}") from exc
    except DBAPIError as exc:
        raise DatabaseError(f"cannot open the database {where}: {one_line(exc.orig)}") from exc
    except SQLAlchemyError as exc:
        raise DatabaseError(f"cannot open the database {where}: {one_line(exc)}") from exc


def one_line(exc: BaseException | None) -> str:
    """An error's message on one line (drivers spread theirs over several, with hints)."""
    text = " ".join(str(exc).split()) if exc is not None else "unknown error"
    return text[:300]
