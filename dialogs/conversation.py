"""The plain values the engine works on: a conversation, what comes in, what goes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

MENU = "menu"  # the state of a conversation that is in no category
CLARIFY = "clarify"  # in no category, asking which of the offered categories the customer meant


@dataclass
class Conversation:
    """Where one customer is: category, state and the facts collected so far."""

    category: str | None = None
    state: str = MENU
    facts: dict[str, str] = field(default_factory=dict)
    case_number: str | None = None  # the case opened for the current or latest complaint
    greeted: bool = False
    salutation: str | None = None  # how the customer asked to be addressed (王先生), if they said
    offered: list[str] = field(default_factory=list)  # categories offered in the clarify state
    offered_text: str = ""  # the message that led to the offer, to take its facts from
    later: str | None = None  # a second complaint from the same message, offered when this one ends


@dataclass(frozen=True)
class Inbound:
    """A customer's message: typed text, or the value of a pressed option."""

    text: str | None = None
    choice: str | None = None
    # Exactly what the customer sent, when a channel adapted `text` for the engine
    # (Telegram's "/start@kefu_bot campaign-7" reaches the engine as "/start").
    as_sent: str | None = None


@dataclass(frozen=True)
class Option:
    label: str
    value: str  # short and unique to the question it answers, so a stale press is recognised


@dataclass(frozen=True)
class Reply:
    text: str
    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class Event:
    """Something that happened in a turn that storage or staff must act on."""

    kind: str  # case_opened, human_requested, conversation_cancelled, conversation_closed, handed_over
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Turn:
    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


@dataclass(frozen=True)
class CaseView:
    """What a customer may learn about a case when asking for its progress."""

    number: str
    category: str
    status: str  # open, closed
    step: int
    role: str
    deadline: datetime
    mine: bool  # opened in this customer's conversation


class Ledger(Protocol):
    """What the engine may ask of storage during one turn (the caller supplies it; the engine does no I/O)."""

    now: datetime

    def number_case(self, category: str) -> str:
        """Returns a new, unique, readable case number."""

    def find_case(self, number: str) -> CaseView | None:
        """Returns the case with this number, if there is one."""
