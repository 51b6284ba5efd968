"""The Telegram channel: turns updates into calls on Service and Casework, and their answers into
Telegram messages; customers on one side, staff on the other, one case between them."""

from __future__ import annotations

import asyncio
import io
import logging
import re
import secrets
import signal
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import AsyncIterator, Awaitable, Callable, Iterable, TypeVar
from urllib.parse import urlparse

from sqlalchemy.exc import OperationalError
from telegram import (BotCommand, BotCommandScopeChat, InlineKeyboardButton, InlineKeyboardMarkup, Message,
                      ReplyParameters, Update)
from telegram.constants import ChatType, MessageLimit
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import (AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
                          ContextTypes, MessageHandler, filters)

from bot.assist import Assistant
from bot.casework import LOW_RATING, CaseCard, Casework, CaseworkError
from bot.config import Settings
from bot.logs import Private
from bot.practice import Practice
from bot.practice import history as practice_history
from bot.service import Service
from bot.staff_texts import StaffTexts, load_staff_texts, say
from bot.outbox import QUEUED, Outbox, OutboxRow, queue
from bot.store import UNIT, InboxRow, Inbox, Session, utcnow
from dialogs.assist import Guidance, load_assist
from dialogs.conversation import Event, Inbound, Option, Reply, Turn
from dialogs.engine import CASE_NUMBER
from dialogs.practice import load_training, topic_texts

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


class InboxQueue(asyncio.Queue):
    """PTB's update queue, writing each update to the durable inbox before queueing it. The poller puts
    an update here before its next getUpdates confirms it to Telegram, and the webhook server before
    it answers Telegram, so an update that Telegram considers delivered is always on disk."""

    def __init__(self, inbox: Inbox, handle: bool = True,
                 unreachable: Callable[[Update], Awaitable[None]] | None = None):
        super().__init__()
        self.inbox = inbox
        self.handle = handle  # False: only kept, for the workers (kefu telegram --receive-only)
        self.unreachable = unreachable  # tells the sender to wait while the database is away

    async def put(self, item) -> None:
        if isinstance(item, Update):
            sender = item.effective_user or item.effective_chat
            if not await self._keep(item, str(sender.id) if sender else None):
                log.info("update %s was delivered again; it is already kept, so it is dropped", item.update_id)
                return
            if not self.handle:
                return
        await super().put(item)

    async def _keep(self, update: Update, user_key: str | None) -> bool:
        """Writes the update to the inbox, waiting as long as the database is away: until it is kept, Telegram
        is not told it arrived (the poller does not confirm it, the webhook does not answer), so none is lost."""
        wait, told = 0.5, False
        while True:
            try:
                return await asyncio.to_thread(self.inbox.add, update.update_id, update.to_dict(), user_key)
            except OperationalError as exc:
                log.warning("the database is unreachable; update %s waits %.1f s: %s", update.update_id, wait,
                            type(exc).__name__)
                if not told and self.unreachable is not None:
                    told = True
                    await self.unreachable(update)
                await asyncio.sleep(wait)
                wait = min(wait * 2, UNREACHABLE_WAIT)


@dataclass
class Unit:
    """The unit being handled: its transaction, and the update it marks done when it commits."""

    session: Session
    update_id: int | None
    fresh: bool = True  # False: an earlier unit already committed this update (a replay)


class UnitApplication(Application):
    """PTB's Application, handling each update inside one of kefu's units (TelegramBot.handle_update)."""

    kefu: "TelegramBot"

    async def process_update(self, update: object) -> None:
        if not isinstance(update, Update):
            return await super().process_update(update)
        await self.kefu.handle_update(update, super().process_update)


# -- the bot ------------------------------------------------------------------------------------

class TelegramBot:
    """kefu on Telegram: one Application whose handlers feed Service (customers) and Casework (staff)."""

    def __init__(self, settings: Settings, service: Service | None = None, role: str = "all"):
        """role: all (receives and handles updates, one process), receive (only keeps what Telegram sends,
        and runs the timed checks) or work (handles the kept updates; several may run on PostgreSQL)."""
        token = settings.telegram_bot_token.get_secret_value().strip() if settings.telegram_bot_token else ""
        if not token:
            raise TelegramConfigError(
                "TELEGRAM_BOT_TOKEN is not set: get a token from @BotFather and set it (see README, 'Telegram').")
        self.settings = settings
        self.service = service or Service.from_settings(settings)
        self.casework = Casework(self.service, timedelta(hours=settings.grace_hours))
        self.texts = self.service.content.shared.texts
        self.staff_texts = load_staff_texts(settings.content_dir)
        self.inbox = Inbox(self.service.store.db)
        self.outbox = Outbox(self.service.store.db)
        self._sending = asyncio.Lock()  # one sender at a time, so no call is made twice
        self.throttle = Throttle(settings.telegram_rate, settings.telegram_burst)
        self.secret = (settings.telegram_secret_token.get_secret_value() if settings.telegram_secret_token
                       else secrets.token_urlsafe(32))
        self._loop: asyncio.AbstractEventLoop | None = None
        self.role = role
        self._stopping: asyncio.Event | None = None  # a worker's stop
        for member in settings.staff:  # kefu.toml's staff join (and update) the database's
            self.casework.add_staff(member.telegram_id, member.role, member.chat_id, member.handles)
        self.assistant, self.practice = self._staff_tools(settings)
        self.application = self._build(token)

    def _staff_tools(self, settings: Settings) -> tuple[Assistant, Practice]:
        """The guided assistant and the training partner, over the same content the customers get."""
        content = self.service.content
        categories = set(content.categories)
        assist = load_assist(settings.content_dir, categories)
        training = load_training(settings.content_dir, categories, topic_texts(content))
        return Assistant(self.casework, assist), Practice(self.service.store, content, training)

    def _build(self, token: str) -> Application:
        builder = (ApplicationBuilder().token(token).rate_limiter(AIORateLimiter(max_retries=3))
                   .application_class(UnitApplication)
                   .update_queue(InboxQueue(self.inbox, self.role == "all", self._busy)).post_init(self._post_init))
        api = (self.settings.telegram_api_base_url or "").rstrip("/")
        if api:
            builder = builder.base_url(f"{api}/bot").base_file_url(f"{api}/file/bot")
        app = builder.build()
        app.kefu = self
        message = filters.UpdateType.MESSAGE
        app.add_handler(CommandHandler(["cases", "case"], self.on_supervisor_command,
                                       filters=message & SupervisorFilter(self.casework)))
        app.add_handler(CommandHandler(["claim", "reply", "resolve", "escalate"], self.on_staff_command, filters=message))
        app.add_handler(CommandHandler(["assist", "train", "mytraining", "training"], self.on_staff_tool, filters=message))
        app.add_handler(CallbackQueryHandler(self.on_callback_query))
        app.add_handler(MessageHandler(message & filters.TEXT, self.on_message))
        app.add_handler(MessageHandler(message & (filters.PHOTO | filters.Document.ALL), self.on_attachment))
        app.add_handler(MessageHandler(message & ~filters.StatusUpdate.ALL, self.on_other_message))
        app.add_error_handler(self.on_error)
        assert app.job_queue is not None, "install python-telegram-bot[job-queue]"
        app.job_queue.run_repeating(self.on_deadline_tick, interval=self.settings.telegram_deadline_seconds,
                                    first=1, name="deadlines")
        app.job_queue.run_repeating(self.on_retry_tick, interval=max(1.0, self.settings.telegram_retry_seconds / 4),
                                    first=1, name="retries")
        if self.role == "work":
            return app  # what follows runs in one process only: the one that receives
        app.job_queue.run_repeating(self.on_outbox_tick, interval=OUTBOX_EVERY, first=OUTBOX_EVERY, name="outbox")
        if self.settings.retention_days:
            app.job_queue.run_repeating(self.on_retention_tick, interval=RETENTION_EVERY, first=60, name="retention")
        return app

    # -- running ---------------------------------------------------------------------------------

    def run(self, handle_signals: bool = True) -> None:
        """Runs until stopped: a webhook server when telegram_webhook_url is set, long polling otherwise.
        handle_signals=False when not on the main thread (Ctrl-C and SIGTERM are then not caught)."""
        signals = {} if handle_signals else {"stop_signals": None}
        url = self.settings.telegram_webhook_url
        if url:
            log.info("kefu telegram: webhook at %s, listening on %s:%s", url, self.settings.telegram_listen,
                     self.settings.telegram_port)
            self.application.run_webhook(
                listen=self.settings.telegram_listen, port=self.settings.telegram_port,
                url_path=urlparse(url).path.lstrip("/"), webhook_url=url, secret_token=self.secret,
                allowed_updates=Update.ALL_TYPES, bootstrap_retries=3, **signals)
        else:
            log.info("kefu telegram: long polling")
            self.application.run_polling(allowed_updates=Update.ALL_TYPES, bootstrap_retries=3, **signals)

    def stop(self) -> None:
        """Stops a running bot gracefully; callable from any thread."""
        if self._loop is not None:
            stop = self._stopping.set if self._stopping is not None else self.application.stop_running
            self._loop.call_soon_threadsafe(stop)

    # -- a worker: handles the updates that the receiving process kept --------------------------------

    def work(self, handle_signals: bool = True) -> None:
        """Runs a worker until stopped (SIGTERM, Ctrl-C or stop()): takes kept updates one at a time, each in
        its unit, one customer's in order, and sends what each says."""
        asyncio.run(self._work(handle_signals))

    async def _work(self, handle_signals: bool) -> None:
        self._stopping = asyncio.Event()
        if handle_signals:
            for sig in (signal.SIGINT, signal.SIGTERM):
                asyncio.get_running_loop().add_signal_handler(sig, self._stopping.set)
        app = self.application
        async with app:  # initialize and, at the end, shutdown
            await self._post_init(app)
            await asyncio.to_thread(self.service.router.wait)
            await app.start()  # the timed checks
            log.info("kefu telegram: worker")
            while not self._stopping.is_set():
                if not await self.work_once():
                    try:
                        await asyncio.wait_for(self._stopping.wait(), WORKER_IDLE)
                    except TimeoutError:
                        pass
            await app.stop()

    async def work_once(self) -> bool:
        """Handles the next kept update in one unit; False when none is waiting."""
        try:
            async with self.unit() as unit:
                row = await self._db(self.inbox.claim, unit.session)
                if row is None:
                    return False
                unit.update_id = row.update_id
                await Application.process_update(self.application, Update.de_json(row.data, self.application.bot))
        except Exception as exc:  # the unit could not commit: the update stays kept and is taken again
            log.error("a worker's unit could not be committed: %s", type(exc).__name__, exc_info=exc)
            await asyncio.sleep(WORKER_IDLE)
        return True

    async def _post_init(self, app: Application) -> None:
        """Registers the commands, starts training the router, and queues the updates kept in the
        inbox but never handled (the process stopped first)."""
        self._loop = asyncio.get_running_loop()
        self.service.router.warm()
        if self.role == "work":
            return  # the receiving process registers; the inbox is the worker's queue
        await app.bot.set_my_commands([BotCommand(c, d) for c, d in self.staff_texts.customer_commands.items()])
        for chat in await self._db(self.casework.staff_chats):
            try:
                await app.bot.set_my_commands([BotCommand(c, d) for c, d in self.staff_texts.staff_commands.items()],
                                              scope=BotCommandScopeChat(chat))
            except TelegramError as exc:  # the bot is not (yet) in that chat
                log.warning("could not register the staff commands in chat %s: %s", chat, exc)
        pending = await self._db(self.inbox.pending) if self.role == "all" else []
        if pending:
            log.info("replaying %d update(s) kept in the inbox but not handled", len(pending))
        for data in pending:
            update = Update.de_json(data, app.bot)
            asyncio.Queue.put_nowait(app.update_queue, update)  # already kept: past InboxQueue.put

    # -- one update, one transaction -------------------------------------------------------------

    async def handle_update(self, update: Update, process: Callable[[Update], Awaitable[None]]) -> None:
        """Handles an update in one unit: its every effect, the update marked done and the messages it sends
        are committed together, then sent. An update already committed (a replay) is not run again; one whose
        unit cannot commit stays kept and is tried again later."""
        if update.effective_message is not None and update.effective_message.text:
            await self._db(self.service.router.wait)  # a model still training: before the unit takes the write lock
        try:
            async with self.unit(update.update_id) as unit:
                if unit.fresh:
                    await process(update)
        except Exception as exc:
            log.error("update %s could not be committed: %s", update.update_id, type(exc).__name__, exc_info=exc)
            wait = timedelta(seconds=self.settings.telegram_retry_seconds)
            try:
                await self._db(self.inbox.fail, update.update_id, f"{type(exc).__name__}: {exc}",
                               self.settings.telegram_attempts, wait)
            except Exception:  # the database is away: the update is kept (pending); try it again from memory
                log.exception("could not record the failure of update %s; it is tried again in %s", update.update_id, wait)
                await self._busy(update)
                asyncio.get_running_loop().call_later(wait.total_seconds(), asyncio.Queue.put_nowait,
                                                      self.application.update_queue, update)

    async def _busy(self, update: Update) -> None:
        """Tells a customer their message waits (the database is away: straight to Telegram, not via the outbox)."""
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        try:
            await self._send(chat.id, self.texts.system_error.text)
        except TelegramError as exc:
            log.warning("could not tell chat %s to wait: %s", chat.id, exc)

    @asynccontextmanager
    async def unit(self, update_id: int | None = None) -> AsyncIterator[Unit]:
        """One transaction for everything done inside (the store, casework and inbox join it; Telegram calls
        go to the outbox), committed at the end with the update marked done, then its calls are made.
        An update that an earlier unit already committed is not fresh."""
        unit = Unit(Session(self.service.store.db, expire_on_commit=False), update_id)
        queued: list[OutboxRow] = []
        unit_token, queue_token = UNIT.set(unit.session), QUEUED.set(queued)
        try:
            if update_id is not None:
                unit.fresh = await self._db(self._untaken, unit.session, update_id)
            yield unit
            await self._db(self._commit, unit.session, queued, unit.update_id if unit.fresh else None)
        except BaseException:
            await self._db(unit.session.rollback)
            raise
        finally:
            UNIT.reset(unit_token)
            QUEUED.reset(queue_token)
            await self._db(unit.session.close)
        if queued:
            await self._flush([row.id for row in queued])

    @staticmethod
    def _untaken(session: Session, update_id: int) -> bool:
        # Locked on PostgreSQL: a second worker given the same update waits for this unit, then finds it done.
        row = session.get(InboxRow, update_id, with_for_update=session.bind.dialect.name != "sqlite")
        return row is None or row.status != "done"

    def _commit(self, session: Session, queued: list[OutboxRow], update_id: int | None) -> None:
        if update_id is not None:
            row = session.get(InboxRow, update_id)
            if row is not None and row.status == "pending":  # a failed one keeps its failure: retried or dead
                row.status, row.done_at = "done", utcnow()
                session.add(row)
        for row in queued:
            row.update_id = update_id
        self.outbox.write(session, queued)
        session.commit()

    @staticmethod
    def _undo() -> None:
        """Drops what the failed update did so far (its error is then recorded in the same unit)."""
        session, queued = UNIT.get(), QUEUED.get()
        if session is not None:
            session.rollback()
        if queued is not None:
            queued.clear()

    # -- customers -------------------------------------------------------------------------------

    async def on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Hands a customer's text to the engine, or a staff member's reply to the customer."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None:
            return
        staff_chats = await self._db(self.casework.staff_chats)
        number = self._card_number(message.reply_to_message, context)
        if number is not None and (message.chat_id in staff_chats or (await self._db(self.casework.staff, user.id))):
            return await self._staff_reply(update, context, number, message.text)
        if message.chat.type == ChatType.PRIVATE and await self._in_staff_tool(update, context, Inbound(text=message.text)):
            return
        if message.chat_id in staff_chats:
            return await self._staff_chat(update, context)
        if self._customer_chat(message, staff_chats):
            await self._customer(update, context, Inbound(text=command_text(message.text), as_sent=message.text))

    async def on_attachment(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Keeps a customer's photo or document as evidence with their case, and says so."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or not self._customer_chat(message, (await self._db(self.casework.staff_chats))):
            return
        caption = message.caption or ""
        if message.photo:
            photo = message.photo[-1]  # the largest size
            kind, file_id, shown = "photo", photo.file_id, f"[{self.staff_texts.message_kinds.get('photo', 'photo')}] {caption}".strip()
            meta = {"file_unique_id": photo.file_unique_id, "width": photo.width, "height": photo.height,
                    "file_size": photo.file_size}
        else:
            document = message.document
            assert document is not None
            kind, file_id, shown = "document", document.file_id, f"[{self.staff_texts.message_kinds.get('document', 'document')} {document.file_name or ''}] {caption}".strip()
            meta = {"file_unique_id": document.file_unique_id, "file_name": document.file_name,
                    "mime_type": document.mime_type, "file_size": document.file_size}
        meta.update({"caption": caption, "message_id": message.message_id, "chat_id": message.chat_id,
                     "date": message.date.isoformat() if message.date else None})
        user_key = str(user.id)
        allowed = self.throttle.take(user_key)
        card = await self._db(self.casework.customer_wrote, CHANNEL, user_key)
        answer = await self._db(self.casework.attach, CHANNEL, user_key, kind, file_id, meta, shown)
        if card is not None:
            await self._forward(context, card, kind, file_id, say(self.staff_texts.forwarded.attachment, number=card.number, text=caption))
        await self._answer(context, message.chat_id, user_key, [answer], allowed)

    async def on_other_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answers stickers, voice, locations and the like with what kefu can take."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or not self._customer_chat(message, (await self._db(self.casework.staff_chats))):
            return
        kind = next((k for k in KINDS if getattr(message, k, None)), "other")
        kinds = self.staff_texts.message_kinds
        user_key = str(user.id)
        allowed = self.throttle.take(user_key)
        answer = Reply(self.texts.unsupported_message.text)
        await self._db(self.service.record, CHANNEL, user_key, Inbound(text=f"[{kinds.get(kind, kinds['other'])}]"),
                            Turn([answer], [Event("unsupported_message", {"kind": kind})]))
        await self._answer(context, message.chat_id, user_key, [answer], allowed)

    async def on_callback_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answers a pressed button, takes its keyboard away, and acts on it."""
        query = update.callback_query
        if query is None:
            return
        data = query.data or ""
        if STAFF_BUTTON.match(data):
            return await self._staff_button(update, context)
        rating = RATE_BUTTON.match(data)
        if rating:
            return await self._rating_button(update, context, rating.group(1), rating.group(2), int(rating.group(3)))
        if query.message is not None and query.message.chat.type != ChatType.PRIVATE:
            # A customer's buttons live in private chats: one pressed in a group (a staff chat) is forged.
            self._answer_query(query, self.texts.staff_only.text, alert=True)
            return
        if TRAIN_BUTTON.match(data) or (update.effective_user is not None
                                        and (await self._db(self.service.store.staff_mode, update.effective_user.id)) is not None):
            self._answer_query(query)
            await self._close_keyboard(query)
            return await self._staff_tool_press(update, context, data)
        self._answer_query(query)
        await self._close_keyboard(query)
        await self._customer(update, context, Inbound(choice=data))

    async def _customer(self, update: Update, context: ContextTypes.DEFAULT_TYPE, inbound: Inbound) -> None:
        """One customer message: to the staff member following their case, or through the engine."""
        user, chat = update.effective_user, update.effective_chat
        assert user is not None and chat is not None
        user_key = str(user.id)
        allowed = self.throttle.take(user_key)
        await self._db(self.casework.customer_wrote, CHANNEL, user_key)  # the case's clock runs again
        relayed = await self._db(self.casework.relay, CHANNEL, user_key, inbound.text) if inbound.text is not None else None
        if relayed is not None:
            card, answer = relayed
            await self._forward(context, card, "text", None, say(self.staff_texts.forwarded.message, number=card.number, text=inbound.text))
            return await self._answer(context, chat.id, user_key, [answer], allowed)
        turn = await asyncio.to_thread(self.service.handle, CHANNEL, user_key, inbound, update.update_id)
        await self._answer(context, chat.id, user_key, turn.replies, allowed)
        await self._tell_staff(context, update, turn)

    async def _answer(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, user_key: str, replies: list[Reply],
                      allowed: bool) -> None:
        """Sends a turn's replies; to a customer over the limit, says to slow down once, and sends only
        the latest turn's replies when they may send again."""
        if allowed:
            await self._db(self.outbox.release, user_key)  # an answer still held for them is older than this one
            await self._send_replies(context, chat_id, replies, user_key)
            return
        warned = await self._db(self.outbox.holds, user_key)
        send_at = utcnow() + timedelta(seconds=max(self.throttle.wait(user_key), 0.5))
        for reply in replies:  # held in the outbox; a later answer replaces it (Outbox.write)
            queue(OutboxRow(chat_id=chat_id, method="send", payload=self._message(reply.text, keyboard(reply.options)),
                            user_key=user_key, held_for=user_key, send_at=send_at))
        if warned:
            return
        notice = Reply(self.texts.too_fast.text)
        await self._db(self.service.record, CHANNEL, user_key, None, Turn([notice], [Event("slowed_down", {})]))
        await self._send_replies(context, chat_id, [notice], user_key)

    async def _tell_staff(self, context: ContextTypes.DEFAULT_TYPE, update: Update, turn: Turn) -> None:
        """Posts what staff must act on after a customer's turn: new cases, calls for a person, low ratings' reasons."""
        user = update.effective_user
        handed = {ev.data.get("case") for ev in turn.events if ev.kind == "human_requested"}
        for ev in turn.events:
            if ev.kind == "case_opened" and ev.data["number"] not in handed:  # a handoff's card says both
                card = await self._db(self.casework.card, ev.data["number"])
                await self._post_card(context, card, self.staff_texts.headers.new_case, (await self._db(self.casework.chats_for, card.role)))
            elif ev.kind == "case_facts_corrected":
                card = await self._db(self.casework.card, ev.data["case"])
                await self._post_card(context, card, self.staff_texts.headers.case_updated, (await self._db(self.casework.chats_for, card.role)))
            elif ev.kind == "human_requested":
                if ev.data.get("case"):
                    card = await self._db(self.casework.card, ev.data["case"])
                    await self._post_card(context, card, self.staff_texts.headers.human_requested, (await self._db(self.casework.chats_for, card.role)))
                else:
                    who = f"{user.full_name}（Telegram {user.id}）" if user else "客户"
                    for chat in await self._db(self.casework.staff_chats):
                        await self._send_text(context, chat, say(self.staff_texts.forwarded.human_without_case, who=who))
            elif ev.kind == "rating_reason":
                await self._alert_supervisors(context, say(self.staff_texts.alerts.low_reason, number=ev.data['case'], reason=ev.data['reason']))

    # -- ratings ---------------------------------------------------------------------------------

    async def _rating_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE, kind: str, number: str,
                             value: int) -> None:
        """Stores a rating (a low one asks why and alerts the supervisors) or a low rating's reason."""
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None
        user_key = str(user.id)
        if not self.throttle.take(user_key):  # presses count against the same budget as messages
            self._answer_query(query, self.texts.too_fast.text, alert=True)
            return
        reasons = self.service.content.shared.rating_reasons
        try:
            if kind == "rate":
                answer = await self._db(self.casework.rate, number, value, CHANNEL, user_key)
            elif value < len(reasons):
                answer = await self._db(self.casework.rating_reason, number, reasons[value], CHANNEL, user_key)
            else:
                raise CaseworkError(self.texts.stale_choice.text)
        except CaseworkError as exc:
            self._answer_query(query, str(exc), alert=True)
            return
        self._answer_query(query)
        await self._close_keyboard(query)
        await self._db(self.service.record, CHANNEL, user_key, Inbound(choice=query.data), Turn([answer]))
        await self._send_replies(context, query.message.chat.id if query.message else user.id, [answer], user_key)
        if kind == "rate" and value <= LOW_RATING:
            await self._alert_supervisors(context, say(self.staff_texts.alerts.low_rating, number=number, stars=value))
        elif kind == "reason":
            await self._alert_supervisors(context, say(self.staff_texts.alerts.low_reason, number=number, reason=reasons[value]))

    async def _alert_supervisors(self, context: ContextTypes.DEFAULT_TYPE, text: str) -> None:
        chats = await self._db(self.casework.supervisor_chats)
        if not chats:
            log.warning("no supervisor chat is configured; not posted: %s", Private(text))
        for chat in chats:
            await self._send_text(context, chat, text)

    # -- staff -----------------------------------------------------------------------------------

    # -- supervisors' shortcuts: /cases and /case <number> (begin) --------------------------------

    async def on_supervisor_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answers a supervisor's /cases (open cases, overdue first) or /case <number> (summary, last messages)."""
        message = update.effective_message
        assert message is not None and message.text is not None
        command = message.text.split(None, 1)[0]
        body = message.text[len(command):].strip()
        text = await self._db(self._supervisor_answer, command.lstrip("/").split("@", 1)[0].lower(), body)
        await self._send_text(context, message.chat_id, text, reply_to=message.message_id)

    def _supervisor_answer(self, verb: str, body: str) -> str:
        from bot import supervisor_chat
        from bot.store import utcnow

        content, zone = self.service.content, self.service.engine.zone
        with self.service.store.reading() as session:
            if verb == "cases":
                return supervisor_chat.open_cases(session, content, zone, utcnow())
            found = CASE_NUMBER.match(body)
            if not found:
                return "请写明案件编号，例如：/case KF-20261127-0001"
            number = f"KF-{found.group(1)}-{found.group(2)}"
            return supervisor_chat.case_summary(session, number, content, zone) or f"没有编号为 {number} 的案件"

    # -- supervisors' shortcuts (end) ----------------------------------------------------------

    async def on_staff_command(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Runs /claim, /reply, /resolve or /escalate for a staff member, and refuses anyone else."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None:
            return
        staff = await self._db(self.casework.staff, user.id)
        if staff is None:
            refusal = Reply(self.texts.staff_only.text)
            if message.chat_id not in await self._db(self.casework.staff_chats):
                await self._db(self.service.record, CHANNEL, str(user.id), Inbound(text=message.text),
                                    Turn([refusal], [Event("staff_command_refused", {})]))
            await self._send_text(context, message.chat_id, refusal.text, reply_to=message.message_id)
            return
        command = message.text.split(None, 1)[0]
        verb = command.lstrip("/").split("@", 1)[0].lower()
        body = message.text[len(command):].strip()
        found = CASE_NUMBER.match(body)
        if found:
            number, body = f"KF-{found.group(1)}-{found.group(2)}", body[found.end():].strip()
        else:
            number = self._card_number(message.reply_to_message, context)
        if number is None:
            usage = "/reply 案件编号 回复内容" if verb == "reply" else f"/{verb} 案件编号"
            await self._send_text(context, message.chat_id, say(self.staff_texts.notes.number_needed, usage=usage),
                                  reply_to=message.message_id)
            return
        if verb == "reply":
            return await self._staff_reply(update, context, number, body)
        try:
            card = await self._staff_act(context, verb, number, user.id)
        except CaseworkError as exc:
            await self._send_text(context, message.chat_id, f"⚠️ {exc}", reply_to=message.message_id)
            return
        await self._post_card(context, card, self._done_header(verb, user.full_name), [message.chat_id])

    def _done_header(self, verb: str, who: str) -> str:
        headers = self.staff_texts.headers
        return say({"claim": headers.claimed, "resolve": headers.resolved, "escalate": headers.escalated}[verb], who=who)

    async def _staff_act(self, context: ContextTypes.DEFAULT_TYPE, verb: str, number: str, staff_id: int) -> CaseCard:
        """Claims, resolves or escalates a case, and does what follows (rating request, the next step's card)."""
        if verb == "claim":
            return await self._db(self.casework.claim, number, staff_id)
        if verb == "resolve":
            card = await self._db(self.casework.resolve, number, staff_id)
            await self._ask_rating(context, card)
            return card
        card = await self._db(self.casework.escalate, number, staff_id)
        await self._post_card(context, card, self.staff_texts.headers.escalated_here, (await self._db(self.casework.chats_for, card.role)))
        return card

    async def _staff_reply(self, update: Update, context: ContextTypes.DEFAULT_TYPE, number: str, text: str) -> None:
        """Sends a staff member's words to the customer of a case, and records them in its transcript."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and user is not None
        if (await self._db(self.casework.staff, user.id)) is None:
            await self._send_text(context, message.chat_id, self.texts.staff_only.text, reply_to=message.message_id)
            return
        try:
            card = await self._db(self.casework.reply, number, user.id, text)
        except CaseworkError as exc:
            await self._send_text(context, message.chat_id, f"⚠️ {exc}", reply_to=message.message_id)
            return
        if card.channel != CHANNEL:
            note = say(self.staff_texts.notes.reply_other_channel, channel=card.channel)
            await self._send_text(context, message.chat_id, note, reply_to=message.message_id)
            return
        # The staff member hears whether it arrived once it was sent (after the commit).
        report = {"chat_id": message.chat_id, "reply_to": message.message_id,
                  "ok": say(self.staff_texts.notes.reply_sent, number=number),
                  "failed": say(self.staff_texts.notes.reply_failed, number=number)}
        await self._send_replies(context, int(card.user_key), [Reply((await self._db(self.casework.reply_text, number, text)))],
                                 card.user_key, report)

    async def _staff_chat(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answers /status and /help in a staff chat; other talk there is the staff's own."""
        message = update.effective_message
        assert message is not None and message.text is not None
        text = command_text(message.text)
        user = update.effective_user
        if text.startswith("/status") and (user is None or (await self._db(self.casework.staff, user.id)) is None):
            # a staff group may hold others: a case card (the customer's phone) is for staff only
            await self._send_text(context, message.chat_id, self.texts.staff_only.text, reply_to=message.message_id)
            return
        if text.startswith("/status"):
            found = CASE_NUMBER.search(text)
            if found is None:
                await self._send_text(context, message.chat_id, self.staff_texts.notes.status_number_needed)
                return
            try:
                card = await self._db(self.casework.card, f"KF-{found.group(1)}-{found.group(2)}")
            except CaseworkError as exc:
                await self._send_text(context, message.chat_id, f"⚠️ {exc}")
                return
            await self._post_card(context, card, self.staff_texts.headers.card, [message.chat_id])
        elif text in ("/help", "/start", "/menu"):
            await self._send_text(context, message.chat_id, self.staff_texts.help)

    async def _staff_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Acts on a case card's button for staff, then shows the card as it now is."""
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None
        found = STAFF_BUTTON.match(query.data or "")
        assert found is not None
        verb, number, index = found.group(1), found.group(2), found.group(3)
        if (await self._db(self.casework.staff, user.id)) is None:  # the card stays as it is for the staff
            self._answer_query(query, self.texts.staff_only.text, alert=True)
            return
        try:
            if verb == "canned":
                canned = (await self._db(self.casework.card, number)).canned
                if index is None or int(index) >= len(canned):
                    raise CaseworkError(self.staff_texts.notes.canned_gone)
                text = canned[int(index)]
                card = await self._db(self.casework.reply, number, user.id, text)
                header = say(self.staff_texts.headers.canned_sent, who=user.full_name, index=int(index) + 1)
                if card.channel == CHANNEL and query.message is not None:
                    report = {"chat_id": query.message.chat.id, "failed": header + self.staff_texts.headers.canned_not_delivered}
                    await self._send_replies(context, int(card.user_key),
                                             [Reply((await self._db(self.casework.reply_text, number, text)))],
                                             card.user_key, report)
                else:
                    header += self.staff_texts.headers.canned_not_delivered
            else:
                card = await self._staff_act(context, verb, number, user.id)
                header = self._done_header(verb, user.full_name)
        except CaseworkError as exc:
            self._answer_query(query, str(exc), alert=True)
            card = await self._db(self._card_or_none, number)
            if card is not None:
                await self._edit(query, card_message(card, self.staff_texts.headers.card, self.staff_texts), card_keyboard(card, self.staff_texts))
            return
        self._answer_query(query, header)
        await self._edit(query, card_message(card, header, self.staff_texts), card_keyboard(card, self.staff_texts))

    async def _ask_rating(self, context: ContextTypes.DEFAULT_TYPE, card: CaseCard) -> None:
        """Asks the customer of a closed case to rate the service."""
        if card.channel != CHANNEL:
            return
        request = await self._db(self.casework.rating_request, card.number)
        await self._db(self.service.record, CHANNEL, card.user_key, None, Turn([request], [Event("rating_requested", {"case": card.number})]))
        await self._send_replies(context, int(card.user_key), [request], card.user_key)

    async def _forward(self, context: ContextTypes.DEFAULT_TYPE, card: CaseCard, kind: str, file_id: str | None,
                       text: str) -> None:
        """Passes what a customer sent on to the staff member who follows their case."""
        member = await self._db(self.casework.staff, card.assigned_to) if card.assigned_to else None
        if member is None:
            return
        chat = member.chat_id or member.telegram_id
        text += "\n" + self.staff_texts.card.forward_hint
        if kind in ("photo", "document") and file_id:
            queue(OutboxRow(chat_id=chat, method=kind, payload={"file_id": file_id, "caption": text[:1024]}))
        else:
            await self._send_text(context, chat, text)

    async def _post_card(self, context: ContextTypes.DEFAULT_TYPE, card: CaseCard, header: str,
                         chats: Iterable[int]) -> None:
        chats = list(chats)
        if not chats:
            log.warning("no staff chat for role %s: the card of case %s was not posted", card.role, card.number)
        for chat in chats:
            await self._send_text(context, chat, card_message(card, header, self.staff_texts), markup=card_keyboard(card, self.staff_texts))

    # -- deadlines -------------------------------------------------------------------------------

    async def on_deadline_tick(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Reminds staff of missed deadlines and posts the cases that moved up a step (the state is in the
        database), in one unit: a reminder is marked given only with its card in the outbox."""
        async with self.unit():
            await self._deadlines(context)

    async def _deadlines(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        for due in await self._db(self.casework.due):
            card = due.card
            chats = ((await self._db(self.casework.supervisor_chats)) or (await self._db(self.casework.staff_chats))) if due.kind == "top" \
                else (await self._db(self.casework.chats_for, card.role))
            header = {"remind": self.staff_texts.headers.remind, "escalated": self.staff_texts.headers.overdue_escalated,
                      "top": self.staff_texts.headers.overdue_top}[due.kind]
            await self._post_card(context, card, header, chats)
        for kind, card in await self._db(self.casework.page_actions):  # done on the supervisor pages
            if kind == "case_closed":
                await self._ask_rating(context, card)
            else:
                await self._post_card(context, card, self.staff_texts.headers.escalated_here,
                                      await self._db(self.casework.chats_for, card.role))
        await self._db(self.inbox.prune)
        await self._db(self.outbox.prune)

    async def on_retention_tick(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Erases the personal data of conversations closed longer ago than retention_days."""
        from bot.customers import purge

        erased = purge(self.service.store.db, self.settings.retention_days, who="kefu")
        if erased:
            log.info("retention: erased the personal data of %d conversation(s)", erased, extra={"erased": erased})

    # -- every update ----------------------------------------------------------------------------

    async def on_retry_tick(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Queues the failed updates whose retry time has come, as at start for those never handled (with
        workers, they are pending again, for the next worker to take)."""
        for data in await self._db(self.inbox.due):
            if self.role == "all":
                asyncio.Queue.put_nowait(context.application.update_queue, Update.de_json(data, context.bot))

    async def on_outbox_tick(self, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Sends what is due: held answers whose time came, and calls a process that stopped left unsent."""
        await self._flush(None)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Logs a failed update with the customer's case number and user id, and tells the customer.
        What the update did so far is undone; the failure, the alert and the message are its unit's work
        (an error outside an update, in a job, gets a unit of its own)."""
        if QUEUED.get() is None:
            async with self.unit():
                return await self._failed(update, context)
        await self._failed(update, context)

    async def _failed(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        try:
            await self._db(self._undo)
            user = update.effective_user if isinstance(update, Update) else None
            update_id = update.update_id if isinstance(update, Update) else None
            case = await self._db(self.casework.latest_case, CHANNEL, str(user.id)) if user else None
            log.error("update %s failed (user %s, case %s): %s", update_id, user.id if user else None, case,
                      type(context.error).__name__, exc_info=context.error,
                      extra={"update_id": update_id, "user": user.id if user else None, "case": case})
            status = "dead"
            if update_id is not None:
                status = await self._db(self.inbox.fail, update_id, f"{type(context.error).__name__}: {context.error}",
                                         self.settings.telegram_attempts,
                                         timedelta(seconds=self.settings.telegram_retry_seconds))
            if status == "dead":
                await self._alert_supervisors(context, say(self.staff_texts.alerts.dead_letter, update=update_id, user=user.id if user else "?",
                                                           case=case or "—", error=type(context.error).__name__))
            chat = update.effective_chat if isinstance(update, Update) else None
            if chat is not None and chat.id not in await self._db(self.casework.staff_chats):
                text = self.texts.system_failed if status == "dead" else self.texts.system_error
                await self._send_text(context, chat.id, text.text)
        except Exception:  # the error handler must never be what stops the bot
            log.exception("the error handler failed too")

    # -- sending ---------------------------------------------------------------------------------

    async def _deliver(self, call: Callable[[], Awaitable[T]]) -> T:
        """Makes one Telegram call, retrying network errors with back-off (a refused request is not retried;
        flood limits are waited out by AIORateLimiter)."""
        for attempt in range(SEND_ATTEMPTS):
            try:
                return await call()
            except NetworkError as exc:
                if isinstance(exc, BadRequest) or attempt == SEND_ATTEMPTS - 1:
                    raise
                log.warning("network error, retrying in %s s: %s", 2 ** attempt, exc)
                await asyncio.sleep(2 ** attempt)
        raise AssertionError("unreachable")

    async def _send_replies(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, replies: list[Reply],
                            user_key: str | None, report: dict | None = None) -> None:
        """Queues replies (already stored) to a customer; one that fails to arrive is recorded in their
        transcript. `report`: a note to staff saying whether the last one arrived (ok, failed)."""
        for i, reply in enumerate(replies):
            payload = self._message(reply.text, keyboard(reply.options))
            if report is not None and i == len(replies) - 1:
                payload["report"] = report
            queue(OutboxRow(chat_id=chat_id, method="send", payload=payload, user_key=user_key))

    async def _send_text(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, text: str,
                         markup: InlineKeyboardMarkup | None = None, reply_to: int | None = None) -> None:
        """Queues a message to staff (or a refusal); a failure is logged."""
        queue(OutboxRow(chat_id=chat_id, method="send", payload=self._message(text, markup, reply_to)))

    @staticmethod
    def _message(text: str, markup: InlineKeyboardMarkup | None = None, reply_to: int | None = None) -> dict:
        return {"text": text, "markup": markup.to_dict() if markup is not None else None, "reply_to": reply_to}

    def _answer_query(self, query, text: str | None = None, alert: bool = False) -> None:
        """Queues the answer to a button press (Telegram shows it, or stops the button's spinner)."""
        queue(OutboxRow(chat_id=query.from_user.id, method="answer",
                        payload={"id": query.id, "text": text, "alert": alert}))

    async def _edit(self, query, text: str, markup: InlineKeyboardMarkup) -> None:
        """Queues replacing a pressed message's text and buttons (one too long keeps its text)."""
        message = query.message
        if message is None:
            return
        payload = {"message_id": message.message_id, "markup": markup.to_dict()}
        if _units(text) <= MessageLimit.MAX_TEXT_LENGTH:
            queue(OutboxRow(chat_id=message.chat.id, method="edit", payload={**payload, "text": text}))
        else:
            queue(OutboxRow(chat_id=message.chat.id, method="markup", payload=payload))

    async def _close_keyboard(self, query) -> None:
        """Takes the buttons off a pressed message, so an old question cannot be answered twice, and
        notes the choice under it (a button press leaves no message of its own in the chat)."""
        message = query.message
        if not isinstance(message, Message):
            return
        markup = message.reply_markup
        label = next((b.text for row in (markup.inline_keyboard if markup else ()) for b in row
                      if b.callback_data == query.data), None)
        if message.text and label:
            await self._edit(query, f"{message.text}\n\n👉 {label}", InlineKeyboardMarkup([]))
        else:
            queue(OutboxRow(chat_id=message.chat.id, method="markup",
                            payload={"message_id": message.message_id, "markup": InlineKeyboardMarkup([]).to_dict()}))

    # -- the sender: the outbox, after its unit committed ------------------------------------------

    async def _flush(self, ids: list[int] | None) -> None:
        """Makes calls from the outbox in order and marks each made: a unit's own (ids), or those due (None);
        a message that did not arrive is recorded in its customer's transcript."""
        async with self._sending:
            rows = await self._db(self.outbox.due, ids)
            if not rows:
                return
            results: dict[int, str | None] = {}
            for row in rows:
                results[row.id] = await self._call(row)  # type: ignore[index]
            await self._db(self.outbox.done, results)
        for row in rows:
            error = results[row.id]  # type: ignore[index]
            report = row.payload.get("report")
            if report:
                await self._report(report, error is None)
            if error is not None and row.method == "send" and row.user_key is not None:
                await self._db(self._record_failure, row, error)

    async def _call(self, row: OutboxRow) -> str | None:
        """Makes one call; None when it was made, else why not (a refused edit or press answer is no failure
        of a message: the message or press was too old)."""
        bot, p = self.application.bot, row.payload
        try:
            # to_dict leaves out an empty keyboard (the one that takes the buttons away)
            markup = (InlineKeyboardMarkup.de_json({"inline_keyboard": [], **p["markup"]}, bot)
                      if p.get("markup") is not None else None)
            if row.method == "send":
                await self._send(row.chat_id, p["text"], markup, p.get("reply_to"))
            elif row.method == "edit":
                await self._deliver(lambda: bot.edit_message_text(p["text"], chat_id=row.chat_id,
                                                                  message_id=p["message_id"], reply_markup=markup))
            elif row.method == "markup":
                await self._deliver(lambda: bot.edit_message_reply_markup(chat_id=row.chat_id,
                                                                          message_id=p["message_id"], reply_markup=markup))
            elif row.method == "answer":
                await self._deliver(lambda: bot.answer_callback_query(p["id"], text=p.get("text"),
                                                                      show_alert=p.get("alert", False)))
            elif row.method == "photo":
                await self._deliver(lambda: bot.send_photo(row.chat_id, p["file_id"], caption=p.get("caption")))
            elif row.method == "document":
                await self._deliver(lambda: bot.send_document(row.chat_id, p["file_id"], caption=p.get("caption")))
            return None
        except TelegramError as exc:
            level = logging.INFO if row.method in ("edit", "markup", "answer") else logging.ERROR
            log.log(level, "%s to chat %s (user %s) failed: %s", row.method, row.chat_id, row.user_key, exc)
            return f"{type(exc).__name__}: {exc}"[:500]
        except Exception as exc:  # a call that cannot be made is marked failed, not tried forever
            log.exception("%s to chat %s could not be made", row.method, row.chat_id)
            return f"{type(exc).__name__}: {exc}"[:500]

    async def _report(self, report: dict, arrived: bool) -> None:
        text = report.get("ok" if arrived else "failed")
        if text:
            try:
                await self._send(report["chat_id"], text, None, report.get("reply_to"))
            except TelegramError as exc:
                log.error("sending to chat %s failed: %s", report["chat_id"], exc)

    def _record_failure(self, row: OutboxRow, error: str) -> None:
        self.service.record(CHANNEL, row.user_key or "", None, Turn([], [Event("send_failed", {
            "chat": row.chat_id, "text": row.payload.get("text", "")[:200], "error": error})]))

    async def _send(self, chat_id: int, text: str, markup: InlineKeyboardMarkup | None = None,
                    reply_to: int | None = None) -> None:
        """Sends a text, split into as many messages as Telegram needs; the buttons go with the last one."""
        bot = self.application.bot
        chunks = split_message(text) or ["…"]
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1
            await self._deliver(lambda: bot.send_message(
                chat_id, chunk, reply_markup=markup if last else None,
                reply_parameters=ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to and i == 0 else None))

    # -- staff tools: the guided assistant and training, in a private chat ------------------------

    async def on_staff_tool(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/assist, /train, /mytraining (staff) and /training (supervisors); anyone else is refused."""
        message, user = update.effective_message, update.effective_user
        if message is None or user is None or message.text is None:
            return
        staff = await self._db(self.casework.staff, user.id)
        command, *args = message.text.split()
        verb = command.lstrip("/").split("@", 1)[0].lower()
        if staff is None or (verb == "training" and staff.role not in ("supervisor", "admin")):
            await self._send_text(context, message.chat_id, self.texts.staff_only.text, reply_to=message.message_id)
            return
        if verb in ("mytraining", "training"):
            history = await self._db(self._history, str(user.id) if verb == "mytraining" else None)
            return await self._send_text(context, message.chat_id, history)
        if message.chat.type != ChatType.PRIVATE:
            return await self._send_text(context, message.chat_id, self.staff_texts.notes.private_only, reply_to=message.message_id)
        if verb == "assist":
            guide = await asyncio.to_thread(self.assistant.start, user.id)
            return await self._send_guide(context, message.chat_id, guide)
        if not args:
            buttons = [Option(label, f"train:{cid}") for label, cid in self.practice.choices()]
            return await self._send_text(context, message.chat_id, self.staff_texts.notes.train_pick, keyboard(buttons))
        number = int(args[1]) if len(args) > 1 and args[1].isdigit() else None
        await self._start_training(context, message.chat_id, user.id, args[0], number)

    async def _in_staff_tool(self, update: Update, context: ContextTypes.DEFAULT_TYPE, inbound: Inbound) -> bool:
        """A staff member's message in their private chat goes to the assistant or the training they
        have open; False when they have none (the message is then a customer's, as anyone's is)."""
        user, chat = update.effective_user, update.effective_chat
        assert user is not None and chat is not None
        mode = await self._db(self.service.store.staff_mode, user.id)
        if mode is None:
            return False
        if mode == "assist":
            guide = await asyncio.to_thread(self.assistant.take, user.id, inbound)
            await self._send_guide(context, chat.id, guide)
        else:
            text, _ = await asyncio.to_thread(self.practice.take, user.id, inbound.text or inbound.choice or "")
            await self._send_text(context, chat.id, text)
        return True

    async def _staff_tool_press(self, update: Update, context: ContextTypes.DEFAULT_TYPE, data: str) -> None:
        """A button under the assistant's guidance, or a category chosen for training."""
        user, chat = update.effective_user, update.effective_chat
        assert user is not None and chat is not None
        picked = TRAIN_BUTTON.match(data)
        if picked is None:
            await self._in_staff_tool(update, context, Inbound(choice=data))
        elif (await self._db(self.casework.staff, user.id)) is None:
            await self._send_text(context, chat.id, self.texts.staff_only.text)
        else:
            await self._start_training(context, chat.id, user.id, picked.group(1), None)

    async def _start_training(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, staff_id: int,
                              category: str, number: int | None) -> None:
        try:
            opening = await asyncio.to_thread(self.practice.start, staff_id, str(staff_id), category, number)
        except ValueError as exc:
            await self._send_text(context, chat_id, f"⚠️ {exc}")
            return
        await self._send_text(context, chat_id, opening)

    async def _send_guide(self, context: ContextTypes.DEFAULT_TYPE, chat_id: int, guide: Guidance) -> None:
        text = guide.text(self.assistant.assist, self.service.engine.zone)
        await self._send_text(context, chat_id, text, keyboard(guide.options))

    def _history(self, trainee: str | None) -> str:
        out = io.StringIO()
        found = practice_history(self.service.store, trainee, self.service.engine.zone, out, latest=HISTORY_LATEST)
        return out.getvalue().rstrip() if found else self.staff_texts.notes.no_training

    @staticmethod
    async def _db(call: Callable[..., T], *args, **kwargs) -> T:
        """Runs a database call on a worker thread: the event loop, and every other chat, never waits on it."""
        return await asyncio.to_thread(call, *args, **kwargs)

    # -- looking things up -----------------------------------------------------------------------

    @staticmethod
    def _customer_chat(message: Message, staff_chats: list[int]) -> bool:
        """Customers write in private chats. A group that is no staff chat is ignored; its id is logged,
        for `kefu staff add ... --chat <id>`."""
        if message.chat_id in staff_chats:
            return False
        if message.chat.type != ChatType.PRIVATE:
            log.info("message in chat %s (%s), which is no staff chat: ignored (kefu staff add <user id> --chat %s "
                     "makes it one)", message.chat_id, Private(message.chat.title or ""), message.chat_id)
            return False
        return True

    @staticmethod
    def _card_number(replied: Message | None, context: ContextTypes.DEFAULT_TYPE) -> str | None:
        """The case a message replies to: one of kefu's own messages (a case card, a forwarded
        customer message) that names a case number."""
        if replied is None or replied.from_user is None or replied.from_user.id != context.bot.id:
            return None
        found = CASE_NUMBER.search(replied.text or replied.caption or "")
        return f"KF-{found.group(1)}-{found.group(2)}" if found else None

    def _card_or_none(self, number: str) -> CaseCard | None:
        try:
            return self.casework.card(number)
        except CaseworkError:
            return None


# -- supervisors' shortcuts (begin; the handler is TelegramBot.on_supervisor_command) ---------------

class SupervisorFilter(filters.MessageFilter):
    """Lets through messages from supervisors and admins only (the staff table, read at each message), so
    anyone else's /cases or /case goes where it went before: to the engine."""

    def __init__(self, casework: Casework):
        super().__init__(name="supervisor")
        self.casework = casework

    def filter(self, message: Message) -> bool:
        member = self.casework.staff(message.from_user.id) if message.from_user else None
        return member is not None and member.role in ("supervisor", "admin")

# -- supervisors' shortcuts (end) ------------------------------------------------------------------
