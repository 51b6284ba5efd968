"""Tables of the supervisors' work: who may sign in to the supervisor pages, and what supervisors
wrote on cases (notes, tags, reviews, flagged messages), each with who and when."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Text
from sqlmodel import Field, SQLModel

from bot.store import _when

WEB_ROLES = ("admin", "supervisor", "staff")
SEE_ALL = ("admin", "supervisor")  # every case, every trainee, every phone number


class WebUserRow(SQLModel, table=True):
    """A person who signs in to the supervisor pages (kefu user add); staff see only their own work."""

    __tablename__ = "web_users"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, index=True)  # also the trainee name their training sessions carry
    role: str  # admin, supervisor, staff
    password_hash: str  # argon2id, with its parameters and salt (argon2-cffi's encoded form)
    # The same person's Telegram id (kefu staff add), so the cases assigned to them are "their own".
    telegram_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    created_at: datetime = _when()


class CaseMarkRow(SQLModel, table=True):
    """Something a supervisor put on a case: a note, a tag, a review, or a flag on one message."""

    __tablename__ = "case_marks"

    id: int | None = Field(default=None, primary_key=True)
    case_number: str = Field(index=True)
    kind: str  # note, tag, reviewed, flag
    message_id: int | None = Field(default=None, index=True)  # the flagged message (kind flag)
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    author: str  # the web user's name
    at: datetime = _when()
