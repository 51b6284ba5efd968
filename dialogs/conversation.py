"""The plain values the engine works on: a conversation, what comes in, what goes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

MENU = "menu"  # the state of a conversation that is in no category
CLARIFY = "clarify"  # in no category, asking which of the offered categories the customer meant
AFTER = "after"  # in no category, after a case or an answer: the likely next steps are offered
TOPIC = "topic"  # the one state of a conversation about a fee or policy topic
REASON = "reason"  # in no category, after a low rating: the next message says why


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
    memory: "Memory" = field(default_factory=lambda: Memory())


@dataclass
class Memory:
    """What the conversation patterns remember between turns (dialogs/repairs.py): stored as one JSON value."""

    said: list[str] = field(default_factory=list)  # the customer's messages in the current complaint, first one first
    skipped: list[str] = field(default_factory=list)  # facts the customer cannot give (no waybill): left for staff
    misses: int = 0  # failed answers in a row to the question asked now
    confirming: str | None = None  # cancel or bye, when kefu asked "sure?" and waits for yes or no
    last_lines: list[str] = field(default_factory=list)  # what kefu said last turn: never said again at once
    topic: str | None = None  # the fee topic asked about last, for follow-ups that name none (那两千呢)
    handed: str | None = None  # the case handed to a person (or "" when handed without one)
    second: str | None = None  # the second complaint of a message, offered now: its facts, not its story, carry over
    last_fact: str | None = None  # the fact answered last: what "哦不对，是六楼" corrects
    checking: bool = False  # the complaint is a check kefu started on a disputed charge, not one the customer asked for
    carried: list[str] = field(default_factory=list)  # facts taken from the case just opened: a new value replaces them
    promised: str | None = None  # when a person will be in touch, as told on the handoff: told the same again
    served: str | None = None  # a request answered last turn (上门取件, 改地址): what follows are its details, for staff
    amounts: dict[str, str] = field(default_factory=dict)  # the amount priced last for each fee (cod, insurance): asked again later

    def as_json(self) -> dict[str, Any]:
        return {"said": self.said, "skipped": self.skipped, "misses": self.misses, "confirming": self.confirming,
                "last_lines": self.last_lines, "topic": self.topic, "handed": self.handed, "second": self.second,
                "last_fact": self.last_fact, "checking": self.checking, "carried": self.carried,
                "promised": self.promised, "served": self.served, "amounts": self.amounts}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> "Memory":
        known = {k: v for k, v in (data or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)


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

    # case_opened, human_requested, conversation_cancelled, conversation_closed, handed_over, topic_changed,
    # conversation_reset, rating_reason, relayed_to_staff, ...
    kind: str
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
    paused: bool = False  # waiting on the customer

def with_detail(facts: dict[str, Any], text: str) -> dict[str, Any]:
    """A case's facts with something the customer said after it was opened added (the fact 客户补充)."""
    added = facts.get("added")
    return {**facts, "added": f"{added}；{text}" if added else text}


class Ledger(Protocol):
    """What the engine may ask of storage during one turn (the caller supplies it; the engine does no I/O)."""

    now: datetime

    def number_case(self, category: str) -> str:
        """Returns a new, unique, readable case number."""

    def find_case(self, number: str) -> CaseView | None:
        """Returns the case with this number, if there is one."""

    def my_cases(self) -> list[CaseView]:
        """Returns this customer's open cases, newest first."""
