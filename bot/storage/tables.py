"""Every table kefu keeps (SQLModel classes), and how its times are stored: UTC, zone-aware."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, DateTime, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from dialogs.conversation import Conversation, Memory


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _when() -> Any:
    return Field(default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False))


def aware(moment: datetime | None) -> datetime | None:
    """SQLite hands datetimes back without a zone; all of kefu's are UTC."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment


class ConversationRow(SQLModel, table=True):
    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "user_key"),)

    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(index=True)
    user_key: str
    category: str | None = None
    state: str
    facts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    case_number: str | None = None
    greeted: bool = False
    salutation: str | None = None
    offered: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    offered_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    later: str | None = None
    memory: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=True))  # dialogs.conversation.Memory
    created_at: datetime = _when()
    updated_at: datetime = _when()

    def to_conversation(self) -> Conversation:
        return Conversation(self.category, self.state, dict(self.facts), self.case_number, self.greeted,
                            self.salutation, list(self.offered), self.offered_text, self.later,
                            Memory.from_json(self.memory))

    def take(self, conv: Conversation) -> None:
        """Copies the conversation's new state onto the row."""
        self.category, self.state, self.facts, self.case_number = conv.category, conv.state, dict(conv.facts), conv.case_number
        self.greeted, self.salutation, self.offered = conv.greeted, conv.salutation, list(conv.offered)
        self.offered_text, self.later = conv.offered_text, conv.later
        self.memory = conv.memory.as_json()


class CaseRow(SQLModel, table=True):
    __tablename__ = "cases"

    id: int | None = Field(default=None, primary_key=True)
    number: str = Field(unique=True, index=True)
    content_version: str
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    category: str = Field(index=True)
    status: str = Field(default="open", index=True)  # open, closed
    waybill: str | None = Field(default=None, index=True)
    contact: str | None = None
    facts: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    step: int = 0  # index into the category's handling ladder
    step_role: str
    step_deadline: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    opened_at: datetime = _when()
    closed_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    assigned_to: int | None = Field(default=None, sa_column=Column(BigInteger))  # the staff member's Telegram id
    paused_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))  # waiting on the customer
    reminded_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    top_alerted: bool = False  # the last step's deadline passed and the supervisors were told
    rating: int | None = None  # 1-5, from the customer after the case closed
    rating_reason: str | None = Field(default=None, sa_column=Column(Text))


class StaffRow(SQLModel, table=True):
    __tablename__ = "staff"

    telegram_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    role: str  # staff, supervisor, admin
    chat_id: int | None = Field(default=None, sa_column=Column(BigInteger))
    handles: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class AttachmentRow(SQLModel, table=True):
    """A photo or document a customer sent (evidence), kept by its channel's file id."""

    __tablename__ = "attachments"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    case_number: str | None = Field(default=None, index=True)
    kind: str  # photo, document
    file_id: str
    meta: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = _when()


class InboxRow(SQLModel, table=True):
    """A raw Telegram update, written before Telegram is told it arrived (so a crash loses none);
    pending until every handler has run, replayed at the next start if the process died first."""

    __tablename__ = "telegram_inbox"

    update_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    user_key: str | None = Field(default=None, index=True)  # the sender: workers take one of theirs at a time
    # pending: to handle; done; retry: failed, tried again at retry_at; dead: failed every attempt
    status: str = Field(default="pending", index=True)
    received_at: datetime = _when()
    done_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    attempts: int = 0  # failed attempts so far
    error: str | None = Field(default=None, sa_column=Column(Text))  # the last failure, one line
    retry_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class AuditRow(SQLModel, table=True):
    """Who did what to whose data: exports, erasures, staff removals, retention runs, restores."""

    __tablename__ = "audit_log"

    id: int | None = Field(default=None, primary_key=True)
    action: str  # customer_export, customer_erase, retention_erase, staff_remove, restore
    subject: str | None = None  # the customer's user key, or the staff member's id
    actor: str  # the operating-system user who ran the command, or "kefu" for automatic runs
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # counts, never content
    at: datetime = _when()


class MetaRow(SQLModel, table=True):
    """Facts about the database itself (the schema's version is Alembic's: bot/storage/schema.py)."""

    __tablename__ = "kefu_meta"

    key: str = Field(primary_key=True)
    value: str


class TrainingRow(SQLModel, table=True):
    """One training session (kefu train): who practised which scenario, every line said, and the score
    with its checks after each reply."""

    __tablename__ = "training_sessions"

    id: int | None = Field(default=None, primary_key=True)
    trainee: str = Field(index=True)
    category: str = Field(index=True)
    scenario: int
    training_version: str  # the training content that scored it
    score: int  # the session's final score, 0-100
    finished: bool  # every turn answered (False: the trainee left early)
    forbidden: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # moves committed
    turns: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))  # [{customer, reply, score, checks}]
    started_at: datetime = _when()
    finished_at: datetime = _when()


class CaseCounterRow(SQLModel, table=True):
    """The last case number given out on a day (local date), so a new case takes the next one under a
    row lock instead of counting the day's cases (which two workers would count alike)."""

    __tablename__ = "case_counters"

    day: str = Field(primary_key=True)  # YYYYMMDD
    last: int = 0


class StaffModeRow(SQLModel, table=True):
    """What a staff member is doing in their private chat with kefu: a guided complaint (/assist) or a
    training session (/train). Their messages there go to it until it ends; one at a time."""

    __tablename__ = "staff_modes"

    telegram_id: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    mode: str  # assist, train
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))  # the mode's own state
    started_at: datetime = _when()


class MessageRow(SQLModel, table=True):
    __tablename__ = "messages"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    direction: str  # in, out
    text: str | None = Field(default=None, sa_column=Column(Text))  # exactly as sent or shown
    choice: str | None = None  # the value of a pressed option
    options: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    staff_id: int | None = Field(default=None, sa_column=Column(BigInteger))  # a staff member's reply, not the bot's
    category: str | None = None
    state: str  # the conversation's state when the message was received or sent
    at: datetime = _when()


class EventRow(SQLModel, table=True):
    __tablename__ = "events"

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    case_number: str | None = Field(default=None, index=True)
    kind: str
    data: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    at: datetime = _when()


class OutboxRow(SQLModel, table=True):
    """One Telegram call to make: a message, an edit of a pressed message, or the answer to a press."""

    __tablename__ = "telegram_outbox"

    id: int | None = Field(default=None, primary_key=True)
    update_id: int | None = Field(default=None, sa_column=Column(BigInteger, index=True))  # None: a deadline check
    chat_id: int = Field(sa_column=Column(BigInteger, nullable=False))
    method: str  # send, edit, markup, answer, photo, document
    payload: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    user_key: str | None = None  # the customer whose transcript records a send that failed
    held_for: str | None = Field(default=None, index=True)  # a throttled customer: only their latest answer goes
    send_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))  # None: at once
    # pending: to send; sent; failed: Telegram refused it; dropped: a newer answer replaced it
    status: str = Field(default="pending", index=True)
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = _when()
    sent_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))


class DraftReviewRow(SQLModel, table=True):
    """A supervisor's word on one draft: confirmed as it is, or corrected (the newest per key counts)."""

    __tablename__ = "draft_reviews"

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(index=True)  # the draft's key: file:dotted path of the value
    was: str = Field(sa_column=Column(Text, nullable=False))  # the draft as the supervisor saw it
    decision: str  # confirmed, corrected
    correction: str | None = Field(default=None, sa_column=Column(Text))
    comment: str | None = Field(default=None, sa_column=Column(Text))
    reviewer: str  # who: the supervisor's user name
    at: datetime = _when()


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


METADATA = SQLModel.metadata  # every table above: what the migrations compare and make
