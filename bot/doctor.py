"""kefu doctor: checks what a deployment needs (settings, content, database and its schema, the
Telegram token, staff chats, disk space) and says for each, in one line, ok or what to fix."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session, SQLModel

from bot.config import Settings, SettingsError, config_file, load_settings
from bot.storage import queries
from bot.storage.database import one_line, shown, sqlite_file
from bot.storage.engine import ping
from bot.storage.tables import StaffRow

OK, WARN, FAIL = "ok", "warn", "FAIL"
LOW_DISK = 1 << 30  # 1 GiB: below it, warn; below a tenth of it, fail


@dataclass(frozen=True)
class Check:
    status: str  # ok, warn, FAIL
    name: str
    text: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.name:<9} {self.text}"


def run() -> Iterator[Check]:
    """Every check, in order; later ones are skipped when what they need failed."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        for line in exc.lines:
            yield Check(FAIL, "settings", line)
        return
    path = config_file()
    yield Check(OK, "settings", f"{path.resolve() if path.is_file() else 'no kefu.toml'}, environment, defaults")
    yield _content(settings)
    db = None
    for check, db in _database(settings):
        yield check
    yield from _telegram(settings)
    yield from _staff(settings, db)
    yield _disk(settings)
    if db is not None:
        db.dispose()


def _content(settings: Settings) -> Check:
    from dialogs.content import ContentError, load_content

    try:
        content = load_content(settings.content_dir)
    except ContentError as exc:
        return Check(FAIL, "content", f"{len(exc.problems)} problem(s) in {settings.content_dir}: kefu validate lists them")
    return Check(OK, "content", f"{len(content.categories)} categories, version {content.version} ({settings.content_dir})")


def _database(settings: Settings) -> Iterator[tuple[Check, object]]:
    path = sqlite_file(settings.database_url)
    where = f"SQLite {path}" if path is not None else shown(settings.database_url)
    if path is not None and not path.exists():
        if not path.parent.is_dir():
            yield Check(FAIL, "database", f"{path.parent} does not exist: make it, or set {settings.origin('database_url')}"), None
        else:
            yield Check(WARN, "database", f"no database at {path} yet: kefu chat or kefu telegram makes it there"), None
        return
    db = create_engine(settings.database_url, hide_parameters=True)
    try:
        ping(db)
    except SQLAlchemyError as exc:
        yield Check(FAIL, "database", f"cannot connect to {where} ({settings.origin('database_url')}): "
                                      f"{one_line(getattr(exc, 'orig', None) or exc)}"), None
        return
    yield Check(OK, "database", f"{where} answers"), db
    yield _schema(db), db


def _schema(db) -> Check:
    from bot.storage import schema

    with db.connect() as conn:
        state, at = schema.state(conn), schema.revision(conn)
    if state == "new":
        return Check(OK, "schema", "empty: kefu makes its tables at first start")
    if state == "ahead":
        return Check(FAIL, "schema", f"revision {at} is newer than this kefu's ({schema.head()}): upgrade kefu")
    if state != "current":
        return Check(FAIL, "schema", f"{'revision ' + at if at else 'from before the migrations'}, older than this "
                                     f"kefu's ({schema.head()}): run kefu db upgrade (after kefu backup)")
    have, inspector = set(inspect(db).get_table_names()), inspect(db)
    for name, table in SQLModel.metadata.tables.items():
        columns = {c["name"] for c in inspector.get_columns(name)} if name in have else set()
        missing = [c.name for c in table.columns if c.name not in columns]
        if missing:  # the revision says newest, yet something was taken away by hand
            return Check(FAIL, "schema", f"table {name} lacks {', '.join(missing)}: the database was changed by hand; "
                                         f"restore a backup")
    return Check(OK, "schema", f"revision {at}, the newest, every table and column in place")


def _telegram(settings: Settings) -> Iterator[Check]:
    from bot.botapi import BotApiError, get_me, token_of

    if not token_of(settings):
        yield Check(OK, "telegram", "no TELEGRAM_BOT_TOKEN: kefu telegram needs one, kefu chat does not")
        return
    try:
        me = get_me(settings)
    except BotApiError as exc:
        yield Check(FAIL, "telegram", str(exc))
        return
    mode = f"webhook {settings.telegram_webhook_url}" if settings.telegram_webhook_url else "long polling"
    yield Check(OK, "telegram", f"token accepted: @{me.get('username')} (id {me.get('id')}), {mode}")
    if settings.telegram_webhook_url and settings.telegram_secret_token is None:
        yield Check(WARN, "telegram", "telegram_secret_token not set: each start makes a new one, so several "
                                      "workers behind one webhook would refuse each other's updates")


def _staff(settings: Settings, db) -> Iterator[Check]:
    members = {m.telegram_id: (m.role, m.chat_id) for m in settings.staff}
    if db is not None and inspect(db).has_table(StaffRow.__tablename__):
        with Session(db) as session:
            for row in queries.all_staff(session):
                members.setdefault(row.telegram_id, (row.role, row.chat_id))
    chats = {chat for _, chat in members.values() if chat is not None}
    supervisors = {chat for role, chat in members.values() if chat is not None and role in ("supervisor", "admin")}
    needed = FAIL if settings.telegram_bot_token else WARN
    if not chats:
        yield Check(needed, "staff", "no staff chat: case cards go nowhere (kefu staff add ID --chat CHAT_ID, or "
                                     "[[staff]] in kefu.toml)")
    else:
        yield Check(OK, "staff", f"{len(members)} staff, {len(chats)} staff chat(s)")
    if not supervisors:
        yield Check(WARN, "staff", "no supervisor chat: low ratings and missed last deadlines are only logged "
                                   "(kefu staff add ID --role supervisor --chat CHAT_ID)")
    else:
        yield Check(OK, "staff", f"{len(supervisors)} supervisor chat(s)")


def _disk(settings: Settings) -> Check:
    path = sqlite_file(settings.database_url)
    folder = path.parent if path is not None and path.parent.is_dir() else Path.cwd()
    free = shutil.disk_usage(folder).free
    shown_free = f"{free / (1 << 30):.1f} GiB free in {folder}"
    if free < LOW_DISK // 10:
        return Check(FAIL, "disk", f"only {shown_free}: the database and backups need room")
    if free < LOW_DISK:
        return Check(WARN, "disk", f"only {shown_free}")
    return Check(OK, "disk", shown_free)
