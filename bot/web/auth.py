"""Who is signed in to the supervisor pages: users and their argon2 password hashes, the signed session
cookie's key, role checks, and the anti-forgery (synchronizer) token that every form carries."""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine as DbEngine
from sqlmodel import Session
from starlette.datastructures import FormData
from starlette.requests import Request

from bot.storage.engine import reading
from bot.storage import queries
from bot.storage.queries import Scope
from bot.storage.tables import MetaRow, WebUserRow
from bot.supervision import SEE_ALL, WEB_ROLES

SESSION_SECONDS = 8 * 3600  # a sign-in lasts a working day, however busy (the cookie's signature carries its time)
CSRF_FIELD = "csrf_token"
_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash("not a password")  # verified against for unknown names, so they take as long


class UserError(Exception):
    """A user that cannot be added as asked (said to the operator)."""


class NotSignedIn(Exception):
    """The page needs a signed-in user."""


class Forbidden(Exception):
    """The signed-in user's role may not see or do this, or a form came without its anti-forgery token."""


@dataclass(frozen=True)
class User:
    name: str
    role: str
    telegram_id: int | None

    @property
    def sees_all(self) -> bool:
        """Supervisors and admins see every case, trainee and phone number; staff only their own."""
        return self.role in SEE_ALL

    def scope(self) -> Scope:
        return Scope() if self.sees_all else Scope.own(self.telegram_id, self.name)


def add_user(db: DbEngine, name: str, role: str, password: str, telegram_id: int | None = None) -> User:
    """Adds a user, or sets an existing one's role, password and Telegram id."""
    name = name.strip()
    if not name:
        raise UserError("the name is empty")
    if role not in WEB_ROLES:
        raise UserError(f"unknown role '{role}' (admin, supervisor or staff)")
    if len(password) < 8:
        raise UserError("the password needs at least 8 characters")
    with Session(db) as session, session.begin():
        row = queries.web_user(session, name) or WebUserRow(name=name, role=role, password_hash="")
        row.role, row.password_hash, row.telegram_id = role, _hasher.hash(password), telegram_id
        session.add(row)
    return User(name, role, telegram_id)


def authenticate(db: DbEngine, name: str, password: str) -> User | None:
    """The user with this name and password, or None (a wrong name or password alike)."""
    with reading(db) as session:  # takes no write lock on SQLite
        row = queries.web_user(session, name.strip())
    try:
        _hasher.verify(row.password_hash if row else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(row.name, row.role, row.telegram_id) if row else None


def find_user(db: DbEngine, name: str) -> User | None:
    with reading(db) as session:
        row = queries.web_user(session, name)
    return User(row.name, row.role, row.telegram_id) if row else None


def session_key(db: DbEngine) -> str:
    """The key that signs session cookies: made once and kept in the database, so a restart or a
    second worker keeps everyone signed in."""
    with Session(db) as session, session.begin():
        row = session.get(MetaRow, "web_session_key")
        if row is None:
            row = MetaRow(key="web_session_key", value=secrets.token_urlsafe(48))
            session.add(row)
        return row.value


def sign_in(request: Request, user: User) -> None:
    request.session.clear()  # a new session at sign-in: no token from before it survives
    request.session.update({"user": user.name, "since": int(time.time()), CSRF_FIELD: secrets.token_urlsafe(32)})


def signed_in(request: Request) -> User | None:
    """The signed-in user, read from the database each time (a changed role applies at once); None once
    the sign-in is SESSION_SECONDS old, even if the cookie was renewed by use since."""
    name, since = request.session.get("user"), request.session.get("since")
    if not name or not isinstance(since, int) or time.time() - since > SESSION_SECONDS:
        return None
    return find_user(request.app.state.db, name)


def require(request: Request, *roles: str) -> User:
    """The signed-in user, if their role is one of roles (any role when none are given)."""
    user = signed_in(request)
    if user is None:
        raise NotSignedIn()
    if roles and user.role not in roles:
        raise Forbidden("您的角色无权查看此页面")
    return user


def csrf_token(request: Request) -> str:
    token = request.session.get(CSRF_FIELD)
    if token is None:
        token = request.session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: Request) -> FormData:
    """The posted form, if it carries this session's anti-forgery token (Forbidden otherwise)."""
    form = await request.form()
    sent, expected = form.get(CSRF_FIELD), request.session.get(CSRF_FIELD)
    if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
        raise Forbidden("表单已失效或来源不明，请刷新页面后重试")
    return form
