"""Staff on Telegram: case cards and their buttons, /claim /reply /resolve /escalate, replies to a card,
/status in a staff chat, and the staff tools in a private chat (/assist, /train, /mytraining, /training)."""

from __future__ import annotations

import asyncio
import io
from typing import Iterable

from telegram import Message, Update
from telegram.constants import ChatType
from telegram.ext import ContextTypes

from bot.casework import CaseCard, CaseworkError
from bot.practice import history as practice_history
from bot.staff_texts import say
from bot.storage.outbox import queue
from bot.storage.tables import OutboxRow
from bot.telegram.common import (CHANNEL, HISTORY_LATEST, TRAIN_BUTTON, card_keyboard, card_message,
                                 command_text, keyboard, log, Part)
from dialogs.assist import Guidance
from dialogs.conversation import Event, Inbound, Option, Reply, Turn
from dialogs.engine import CASE_NUMBER

class Staff(Part):
    """Staff handlers: commands, card buttons, replies to a card, staff chats and the staff tools."""

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

    async def on_staff_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Acts on a case card's button for staff, then shows the card as it now is."""
        query, user = update.callback_query, update.effective_user
        assert query is not None and user is not None and context.matches
        found = context.matches[0]
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
