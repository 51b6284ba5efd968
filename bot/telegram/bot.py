"""kefu on Telegram: one Application whose handlers (by audience: customers, staff, supervisors) feed
Service and Casework; each update is handled in one unit (one transaction), its messages sent after."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import signal
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import AsyncIterator, Awaitable, Callable
from urllib.parse import urlparse

from telegram import (BotCommand, BotCommandScopeChat, Update)
from telegram.constants import ChatType
from telegram.error import TelegramError
from telegram.ext import (AIORateLimiter, Application, ApplicationBuilder, CallbackQueryHandler, CommandHandler,
                          ContextTypes, MessageHandler, filters)

from bot.assist import Assistant
from bot.casework import Casework
from bot.config import Settings
from bot.practice import Practice
from bot.service import Service
from bot.staff_texts import load_staff_texts, say
from bot.storage.engine import UNIT, locked
from bot.storage.inbox import Inbox
from bot.storage.outbox import Outbox, QUEUED
from bot.storage.tables import InboxRow, OutboxRow
from sqlmodel import Session
from bot.telegram.common import (CHANNEL, IN_PLACE, OUTBOX_EVERY, RATE_BUTTON, RETENTION_EVERY, STAFF_BUTTON, WORKER_IDLE,
                                 InboxQueue, TelegramConfigError, Throttle, Unit, UnitApplication, log, sender_key,
                                 waits)
from bot.telegram.customers import Customers
from bot.telegram.sending import Sending
from bot.telegram.staff import Staff
from bot.telegram.supervisors import SupervisorFilter, Supervisors
from dialogs.assist import load_assist
from dialogs.practice import load_training, topic_texts

class TelegramBot(Customers, Staff, Supervisors, Sending):
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
        # SQLite lets one writer in at a time: its writers queue here rather than each on a worker thread in
        # SQLite's busy wait, which could take every thread a unit needs to finish (and so stall them all).
        self._writer = asyncio.Lock() if self.service.store.db.dialect.name == "sqlite" else None
        self._receiving = asyncio.Lock()  # updates as they arrive, handled one at a time, in order
        self.throttle = Throttle(settings.telegram_rate, settings.telegram_burst)
        self._holding: set[str] = set()  # customers this process holds an answer for (the throttle is per process too)
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
                   .update_queue(InboxQueue(self.inbox, self.receive if self.role == "all" else None, self._busy,
                                            self._writer))
                   .post_init(self._post_init))
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
        app.add_handler(CallbackQueryHandler(self.on_staff_button, pattern=STAFF_BUTTON))
        app.add_handler(CallbackQueryHandler(self.on_rating_button, pattern=RATE_BUTTON))
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
        unit: Unit | None = None
        try:
            async with self.unit() as unit:
                row = await self._db(self.inbox.claim, unit.session)
                if row is None:
                    return False
                unit.update_id = row.update_id
                await Application.process_update(self.application, Update.de_json(row.data, self.application.bot))
        except Exception as exc:  # the unit could not commit: a failed attempt, tried again later, then dead
            log.error("a worker's unit could not be committed: %s", type(exc).__name__, exc_info=exc)
            try:
                if unit is not None and unit.update_id is not None:
                    await self._failed_attempt(unit.update_id, exc)
            except Exception:
                log.exception("could not record the failure")
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

    async def receive(self, update: Update) -> None:
        """An update as it arrives, in the one process that receives and handles (role all): kept and handled
        in one unit, one transaction. Returns only once it is on disk (handled, or its failure recorded), so
        Telegram is told it arrived only then; while the database is away, the customer is told to wait."""
        async with self._receiving:
            for tries, wait in enumerate(waits()):
                if await self.handle_update(update, self._process, arriving=True):
                    return
                if tries == 0:
                    await self._busy(update)
                await asyncio.sleep(wait)

    async def _process(self, update: Update) -> None:
        await Application.process_update(self.application, update)  # PTB's handlers, inside the caller's unit

    async def handle_update(self, update: Update, process: Callable[[Update], Awaitable[None]],
                            arriving: bool = False) -> bool:
        """Handles an update in one unit: its every effect, the update marked done (kept too, when `arriving`)
        and the messages it sends are committed together, then sent. An update already committed (a replay or
        a redelivery) is not run again; one whose unit cannot commit is kept as a failure, tried again later.
        False when neither could be written (the database is away): an arriving update is then the caller's to
        try again, a kept one is tried again from memory."""
        if update.effective_message is not None and update.effective_message.text and not self.service.router.ready:
            await self._db(self.service.router.wait)  # a model still training: before the unit takes the write lock
        try:
            async with self.unit(update.update_id, update if arriving else None) as unit:
                if unit.fresh:
                    await process(update)
            return True
        except Exception as exc:
            log.error("update %s could not be committed: %s", update.update_id, type(exc).__name__, exc_info=exc)
            wait = timedelta(seconds=self.settings.telegram_retry_seconds)
            try:
                await self._failed_attempt(update.update_id, exc, update)
                return True
            except Exception:
                log.exception("could not record the failure of update %s; it is tried again", update.update_id)
                if not arriving:  # kept (pending) already: try it again from memory
                    await self._busy(update)
                    asyncio.get_running_loop().call_later(wait.total_seconds(), asyncio.Queue.put_nowait,
                                                          self.application.update_queue, update)
                return False

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
    async def unit(self, update_id: int | None = None, arriving: Update | None = None) -> AsyncIterator[Unit]:
        """One transaction for everything done inside (the store, casework and inbox join it; Telegram calls
        go to the outbox), committed at the end with the update marked done, then its calls are made. An
        arriving update is kept in the same transaction. An update that an earlier unit already committed
        (or a redelivery of one already kept) is not fresh."""
        async with self._writer or contextlib.nullcontext():
            async with self._unit(update_id, arriving) as unit:
                yield unit
        if unit.calls:  # made after the writer's turn: the next unit need not wait for Telegram
            try:
                await self._flush(unit.calls)
            except Exception:  # committed: what was not marked sent stays in the outbox, for the tick
                log.exception("the calls of a committed unit could not all be made; the outbox keeps them")

    @asynccontextmanager
    async def _unit(self, update_id: int | None, arriving: Update | None) -> AsyncIterator[Unit]:
        unit = Unit(Session(self.service.store.db, expire_on_commit=False), update_id)
        queued: list[OutboxRow] = []
        unit_token, queue_token = UNIT.set(unit.session), QUEUED.set(queued)
        in_place = IN_PLACE.set(False)
        try:
            if arriving is not None:  # kept in this transaction: one commit keeps and handles it
                unit.inbox_row = await asyncio.to_thread(self.inbox.arrive, unit.session, arriving.update_id,
                                                         sender_key(arriving))
                unit.fresh = unit.inbox_row is not None
            elif update_id is not None:
                unit.inbox_row = await asyncio.to_thread(self._inbox_row, unit.session, update_id)
                unit.fresh = unit.inbox_row is None or unit.inbox_row.status != "done"
            # The write lock is the unit's now (BEGIN IMMEDIATE): its calls can run in place.
            IN_PLACE.set(self._writer is not None and update_id is not None)
            yield unit
            # The commit waits for the disk: never in place (the session is closed on that thread too).
            await asyncio.to_thread(self._commit, unit.session, queued, unit.update_id if unit.fresh else None)
        except BaseException:
            try:
                await asyncio.to_thread(unit.session.rollback)
            finally:
                await asyncio.to_thread(unit.session.close)
            raise
        finally:
            IN_PLACE.reset(in_place)
            UNIT.reset(unit_token)
            QUEUED.reset(queue_token)
        unit.calls = queued

    async def _failed_attempt(self, update_id: int, error: BaseException | None, update: Update | None = None) -> str:
        """Records a failed attempt at an update (Inbox.fail, with the bot's retry settings; the update kept
        if its unit was to keep it); its new status."""
        return await self._db(self.inbox.fail, update_id, f"{type(error).__name__}: {error}",
                              self.settings.telegram_attempts, timedelta(seconds=self.settings.telegram_retry_seconds),
                              update.to_dict() if update else None, sender_key(update) if update else None)

    @staticmethod
    def _inbox_row(session: Session, update_id: int) -> InboxRow | None:
        # Locked on PostgreSQL: a second worker given the same update waits for this unit, then finds it done.
        return session.get(InboxRow, update_id, with_for_update=locked(session))

    def _commit(self, session: Session, queued: list[OutboxRow], update_id: int | None) -> None:
        if update_id is not None:
            self.inbox.finish(update_id)  # in this unit's transaction (it is the ambient one here)
        for row in queued:
            row.update_id = update_id
        self.outbox.write(session, queued)
        session.commit()
        session.close()  # here, not in a thread handoff of its own: it only hands the connection back

    @staticmethod
    def _undo() -> None:
        """Drops what the failed update did so far (its error is then recorded in the same unit)."""
        session, queued = UNIT.get(), QUEUED.get()
        if session is not None:
            session.rollback()
        if queued is not None:
            queued.clear()

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

        erased = await self._db(purge, self.service.store.db, self.settings.retention_days, who="kefu")
        if erased:
            log.info("retention: erased the personal data of %d conversation(s)", erased, extra={"erased": erased})

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
                status = await self._failed_attempt(update_id, context.error, update)
            if status == "done":
                return  # another worker handled it meanwhile: its answer is the customer's
            if status == "dead":
                await self._alert_supervisors(context, say(self.staff_texts.alerts.dead_letter, update=update_id, user=user.id if user else "?",
                                                           case=case or "—", error=type(context.error).__name__))
            chat = update.effective_chat if isinstance(update, Update) else None
            if chat is not None and chat.id not in await self._db(self.casework.staff_chats):
                text = self.texts.system_failed if status == "dead" else self.texts.system_error
                await self._send_text(context, chat.id, text.text)
        except Exception:  # the error handler must never be what stops the bot
            log.exception("the error handler failed too")

