"""The Telegram adapter's pieces that need no bot: message splitting, the throttle, keyboards and case
cards, the inbox queue, the unit an update is handled in, and what every audience's handlers share."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Iterator, TypeVar

from sqlalchemy.exc import OperationalError
from telegram import (InlineKeyboardButton, InlineKeyboardMarkup, Update)
from telegram.constants import MessageLimit
from telegram.ext import Application

from bot.casework import CaseCard
from bot.staff_texts import StaffTexts, say
from bot.storage.inbox import Inbox
from sqlmodel import Session
from dialogs.conversation import Option

CHANNEL = "telegram"
log = logging.getLogger("kefu.telegram")
RETENTION_EVERY = 6 * 3600  # seconds between retention runs: a day's delay at most a quarter

# Button data (Telegram allows 64 bytes): staff actions on a case card, a rating, a low rating's reason.
STAFF_BUTTON = re.compile(r"^staff:(claim|resolve|escalate|canned):(KF-\d{8}-\d{4,6})(?::(\d+))?$")
RATE_BUTTON = re.compile(r"^(rate|reason):(KF-\d{8}-\d{4,6}):(\d+)$")
TRAIN_BUTTON = re.compile(r"^train:([a-z_]+)$")
HISTORY_LATEST = 30  # training sessions listed in a chat; the means count them all
# Message kinds kefu cannot read, as PTB names them (what staff see for each: staff/telegram.yaml).
KINDS = ("sticker", "voice", "video_note", "audio", "video", "animation", "location", "venue", "contact", "poll",
         "dice", "game", "story")
# Commands whose words after the command are not part of what they ask (/start <deep-link payload>).
BARE_COMMANDS = {"/start", "/menu", "/cancel", "/human", "/help"}
UNREACHABLE_WAIT = 30.0  # the longest wait between tries to keep an update while the database is away
WORKER_IDLE = 0.2  # seconds a worker waits when no update is waiting
OUTBOX_EVERY = 0.5  # seconds between looks at the outbox (held answers whose time came, sends a crash left)
SEND_ATTEMPTS = 3  # network errors on a send are retried with back-off (1 s, 2 s); flood limits by AIORateLimiter

T = TypeVar("T")


class TelegramConfigError(Exception):
    """kefu telegram cannot start: a setting is missing or wrong."""


# -- pieces that need no bot --------------------------------------------------------------------

def _units(text: str) -> int:
    """Telegram measures message length in UTF-16 code units (an emoji may count twice)."""
    return len(text.encode("utf-16-le")) // 2


def _fit(line: str, limit: int) -> int:
    """Where to cut a line too long for one message: after the last sentence end that fits,
    else as much as fits (never inside a surrogate pair)."""
    end, size = 0, 0
    for i, ch in enumerate(line):
        size += 2 if ord(ch) > 0xFFFF else 1
        if size > limit:
            break
        end = i + 1
    sentence = max(line.rfind(mark, 0, end) for mark in "。！？；!?;")
    return sentence + 1 if sentence >= end // 2 else max(end, 1)


def split_message(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Cuts a reply into messages Telegram accepts: at line breaks, and a line longer than a whole
    message at its last sentence end that fits."""
    pieces: list[str] = []
    for line in text.split("\n"):
        while _units(line) > limit:
            cut = _fit(line, limit)
            pieces.append(line[:cut])
            line = line[cut:]
        pieces.append(line)
    chunks: list[list[str]] = [[]]
    size = 0
    for piece in pieces:
        extra = _units(piece) + (1 if chunks[-1] else 0)
        if chunks[-1] and size + extra > limit:
            chunks.append([])
            extra = _units(piece)
            size = 0
        chunks[-1].append(piece)
        size += extra
    return [joined for joined in ("\n".join(c).strip("\n") for c in chunks) if joined.strip()]


class Throttle:
    """A token bucket per customer: `burst` messages at once, then `rate` a second. A customer over
    it is asked to slow down; their messages are still stored and handled."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, max(1, burst), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key: (tokens, when)

    def _level(self, key: str) -> float:
        tokens, then = self._buckets.get(key, (float(self.burst), self.clock()))
        return min(float(self.burst), tokens + (self.clock() - then) * self.rate)

    def take(self, key: str) -> bool:
        """Takes one message's token; False when the customer is over the limit."""
        tokens = self._level(key)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, self.clock())
        if len(self._buckets) > 10_000:  # forget customers whose buckets are full again
            self._buckets = {k: v for k, v in self._buckets.items() if self._level(k) < self.burst}
        return allowed

    def wait(self, key: str) -> float:
        """Seconds until the customer may send again."""
        missing = 1 - self._level(key)
        return max(0.0, missing / self.rate) if self.rate > 0 else float("inf")


def keyboard(options: Iterable[Option]) -> InlineKeyboardMarkup | None:
    """Options as inline buttons: two a row when the labels are short, else one."""
    buttons = [InlineKeyboardButton(o.label, callback_data=o.value) for o in options]
    if not buttons:
        return None
    width = 2 if len(buttons) > 3 and all(len(b.text) <= 8 for b in buttons) else 1
    return InlineKeyboardMarkup([buttons[i:i + width] for i in range(0, len(buttons), width)])


def command_text(text: str) -> str:
    """A command as the engine knows it: without the bot's @name, and /start without its payload."""
    if not text.startswith("/"):
        return text
    head, _, rest = text.strip().partition(" ")
    command = head.split("@", 1)[0].lower()
    if command in BARE_COMMANDS:
        return command
    return f"{command} {rest.strip()}".strip() if command == "/status" else text


def card_message(card: CaseCard, header: str, texts: StaffTexts) -> str:
    """A case card as staff see it in their chat."""
    lines = [header, card.text()]
    if card.channel != CHANNEL:
        lines.append(say(texts.card.other_channel, channel=card.channel))
    if card.status == "open" and card.canned:
        lines.append(texts.card.canned_title)
        lines += [f"{i}. {text}" for i, text in enumerate(card.canned, start=1)]
    if card.status == "open":  # the number again last: a long card is split, and the buttons go with its end
        lines.append(say(texts.card.reply_hint, number=card.number))
    return "\n".join(lines)


def card_keyboard(card: CaseCard, texts: StaffTexts) -> InlineKeyboardMarkup:
    """The buttons of an open case card: claim, resolve, escalate, and the ready answers."""
    if card.status != "open":
        return InlineKeyboardMarkup([])
    actions = [(texts.card.claim_button, "claim")] if card.assigned_to is None else []
    actions.append((texts.card.resolve_button, "resolve"))
    if card.step < card.steps:
        actions.append((texts.card.escalate_button, "escalate"))
    rows = [[InlineKeyboardButton(label, callback_data=f"staff:{verb}:{card.number}") for label, verb in actions]]
    canned = [InlineKeyboardButton(say(texts.card.canned_button, index=i + 1), callback_data=f"staff:canned:{card.number}:{i}")
              for i in range(len(card.canned))]
    rows += [canned[i:i + 3] for i in range(0, len(canned), 3)]
    return InlineKeyboardMarkup(rows)


def waits() -> Iterator[float]:
    """The waits between tries to keep an update while the database is away: 0.5 s, doubling, at most
    UNREACHABLE_WAIT; endless (Telegram is not told the update arrived until it is kept)."""
    wait = 0.5
    while True:
        yield wait
        wait = min(wait * 2, UNREACHABLE_WAIT)


def sender_key(update: Update) -> str | None:
    """Whose update it is, as the inbox keys them (one customer's are handled in order)."""
    sender = update.effective_user or update.effective_chat
    return str(sender.id) if sender else None


class InboxQueue(asyncio.Queue):
    """PTB's update queue. The poller puts an update here before its next getUpdates confirms it to Telegram,
    and the webhook server before it answers Telegram, so an update is on disk before `put` returns: in one
    process (`receive` given), kept and handled in one transaction; receiving for workers, only kept."""

    def __init__(self, inbox: Inbox, receive: Callable[[Update], Awaitable[None]] | None = None,
                 unreachable: Callable[[Update], Awaitable[None]] | None = None, writer: asyncio.Lock | None = None):
        super().__init__()
        self.inbox = inbox
        self.writer = writer  # SQLite's one writer at a time (TelegramBot._writer)
        self.receive = receive  # TelegramBot.receive: keeps and handles it, returning once it is on disk
        self.unreachable = unreachable  # tells the sender to wait while the database is away

    async def put(self, item) -> None:
        if not isinstance(item, Update):
            return await super().put(item)
        if self.receive is not None:
            return await self.receive(item)
        if not await self._keep(item, sender_key(item)):
            log.info("update %s was delivered again; it is already kept, so it is dropped", item.update_id)

    async def _keep(self, update: Update, user_key: str | None) -> bool:
        """Writes the update to the inbox, waiting as long as the database is away: until it is kept, Telegram
        is not told it arrived (the poller does not confirm it, the webhook does not answer), so none is lost."""
        told = False
        for wait in waits():
            try:
                async with self.writer or contextlib.nullcontext():
                    return await asyncio.to_thread(self.inbox.add, update.update_id, update.to_dict(), user_key)
            except OperationalError as exc:
                busy = "locked" in str(exc)  # SQLite's writer was busy for its whole timeout: wait, the database is there
                log.warning("the database is %s; update %s waits %.1f s: %s", "busy" if busy else "unreachable",
                            update.update_id, wait, type(exc).__name__)
                if not told and not busy and self.unreachable is not None:
                    told = True
                    await self.unreachable(update)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable: waits() never ends")


@dataclass
class Unit:
    """The unit being handled: its transaction, and the update it marks done when it commits."""

    session: Session
    update_id: int | None
    fresh: bool = True  # False: an earlier unit already committed this update (a replay)
    # The update's inbox row, held here so that the session's identity map (which holds rows weakly) keeps
    # it: the turn's take_update and the commit's Inbox.finish find it there instead of querying it again.
    inbox_row: Any = None
    calls: list[Any] = field(default_factory=list)  # the outbox rows it committed, made once it is over


class UnitApplication(Application):
    """PTB's Application, handling each update inside one of kefu's units (TelegramBot.handle_update)."""

    kefu: Any  # the TelegramBot it belongs to

    async def process_update(self, update: object) -> None:
        if not isinstance(update, Update):
            return await super().process_update(update)
        await self.kefu.handle_update(update, super().process_update)

# Set inside a unit that holds SQLite's write lock: its database calls can only be quick (no other writer to
# wait for, readers never block), so they run in place instead of a round trip to a worker thread each
# (about twenty an update). Never on PostgreSQL, where a call may wait on a row lock or the network.
IN_PLACE: ContextVar[bool] = ContextVar("kefu_in_place", default=False)


class Part:
    """What every audience's handlers share: the bot's state lives on TelegramBot, which joins them."""

    @staticmethod
    async def _db(call: Callable[..., T], *args, **kwargs) -> T:
        """Runs a database call on a worker thread: the event loop, and every other chat, never waits on it
        (in place inside a unit holding SQLite's write lock: see IN_PLACE)."""
        if IN_PLACE.get():
            return call(*args, **kwargs)
        return await asyncio.to_thread(call, *args, **kwargs)
