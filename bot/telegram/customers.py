"""Customers on Telegram: their messages, photos and presses through the engine or to the staff following
their case, ratings, and what staff must hear of their turns."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.casework import CaseworkError
from bot.logs import Private
from bot.staff_texts import say
from bot.storage.outbox import queue
from bot.storage.tables import OutboxRow, utcnow
from bot.telegram.common import (CHANNEL, KINDS, TRAIN_BUTTON, command_text, keyboard,
                                 log, Part)
from dialogs.caserules import LOW_RATING
from dialogs.conversation import Event, Inbound, Reply, Turn

class Customers(Part):
    """Customers' handlers: text, attachments, other messages and presses, ratings."""

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
        """Answers a customer's pressed button (a case card's and a rating's have their own handlers), takes its
        keyboard away, and acts on it."""
        query = update.callback_query
        if query is None:
            return
        data = query.data or ""
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
        following = await self._db(self.casework.customer_wrote, CHANNEL, user_key)  # the case's clock runs again
        # Only words for a staff member who follows their latest open case are relayed: customer_wrote just
        # looked that case up (its card, else None), so without one relay's own look (two queries) is skipped.
        relayed = (await self._db(self.casework.relay, CHANNEL, user_key, inbound.text)
                   if inbound.text is not None and following is not None else None)
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
            if user_key in self._holding:  # an answer still held for them is older than this one
                self._holding.discard(user_key)
                await self._db(self.outbox.release, user_key)
            await self._send_replies(context, chat_id, replies, user_key)
            return
        self._holding.add(user_key)
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

    async def on_rating_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Stores a rating (a low one asks why and alerts the supervisors) or a low rating's reason."""
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None and context.matches
        kind, number, value = context.matches[0].group(1), context.matches[0].group(2), int(context.matches[0].group(3))
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
