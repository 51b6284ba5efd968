"""What kefu says on Telegram: calls queued in the unit's outbox, made after it commits, and marked made."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from telegram import InlineKeyboardMarkup, Message, ReplyParameters
from telegram.constants import MessageLimit
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ContextTypes

from bot.storage.outbox import queue
from bot.storage.tables import OutboxRow
from bot.telegram.common import CHANNEL, SEND_ATTEMPTS, T, _units, keyboard, log, Part, split_message
from dialogs.conversation import Event, Reply, Turn

class Sending(Part):
    """Queues what kefu says in the unit's outbox, and makes the calls after it commits."""

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

    async def _flush(self, committed: list[OutboxRow] | None) -> None:
        """Makes calls from the outbox in order and marks each made: a unit's own (just committed), or those
        due (None); a message that did not arrive is recorded in its customer's transcript."""
        async with self._sending:
            rows = self.outbox.now_due(committed) if committed is not None else await self._db(self.outbox.due)
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
