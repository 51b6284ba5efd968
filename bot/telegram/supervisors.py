"""Supervisors on Telegram: /cases (the open cases, overdue first) and /case <number>."""

from __future__ import annotations

from telegram import Message, Update
from telegram.ext import ContextTypes, filters

from bot.casework import Casework
from bot.telegram.common import Part
from dialogs.engine import CASE_NUMBER

class Supervisors(Part):
    """Supervisors' handlers: /cases and /case."""

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
        from bot.storage.tables import utcnow

        content, zone = self.service.content, self.service.engine.zone
        with self.service.store.reading() as session:
            if verb == "cases":
                return supervisor_chat.open_cases(session, content, zone, utcnow())
            found = CASE_NUMBER.match(body)
            if not found:
                return "请写明案件编号，例如：/case KF-20261127-0001"
            number = f"KF-{found.group(1)}-{found.group(2)}"
            return supervisor_chat.case_summary(session, number, content, zone) or f"没有编号为 {number} 的案件"


class SupervisorFilter(filters.MessageFilter):
    """Lets through messages from supervisors and admins only (the staff table, read at each message), so
    anyone else's /cases or /case goes where it went before: to the engine."""

    def __init__(self, casework: Casework):
        super().__init__(name="supervisor")
        self.casework = casework

    def filter(self, message: Message) -> bool:
        member = self.casework.staff(message.from_user.id) if message.from_user else None
        return member is not None and member.role in ("supervisor", "admin")
