"""The guided assistant for staff, channel-neutral: the terminal (`kefu assist`) and Telegram (/assist)
both call it. A session lives in the staff member's StaffModeRow; the complaint itself is an engine
conversation on the `assist` channel, so the case it opens is a case like any other, claimed by the
staff member in the turn that opens it, with each handling step they confirm recorded as an event."""

from __future__ import annotations

import re
import sys
from typing import TextIO

from bot.casework import Casework
from bot.chat import QUIT_WORDS, read_line, safe
from bot.storage import queries
from bot.storage.store import TurnTx
from bot.storage.tables import StaffModeRow, utcnow
from dialogs.assist import AssistContent, Guidance, Rule, ladder, read_turn, rules_for, staff_text, unprefixed
from dialogs.conversation import AFTER, MENU, Conversation, Inbound, Option, Turn
from dialogs.matching import normalize, pick_option

CHANNEL = "assist"
MODE = "assist"
YES, NO = "assist:yes", "assist:no"
_QUESTION = re.compile(r"[?？]|怎么|什么|吗")


class Assistant:
    def __init__(self, casework: Casework, assist: AssistContent):
        self.casework = casework
        self.service = casework.service
        self.engine = self.service.engine
        self.assist = assist
        self._ends = {normalize(w).casefold() for w in assist.end_words}

    def active(self, staff_id: int) -> bool:
        return self.service.store.staff_mode(staff_id) == MODE

    def start(self, staff_id: int) -> Guidance:
        """Starts a new guided complaint for the staff member (ending any session they had open)."""
        key = f"{staff_id}:{utcnow():%Y%m%d%H%M%S%f}"
        with self.service.store.writing() as session:
            row = session.get(StaffModeRow, staff_id) or StaffModeRow(telegram_id=staff_id, mode=MODE)
            row.mode, row.started_at = MODE, utcnow()
            row.data = {"key": key, "case": None, "phase": None, "shown": [], "turns": 0}
            session.add(row)
        guide = self.take(staff_id, Inbound(text=""))
        guide.notes.insert(0, self.assist.texts.started.text)
        return guide

    def take(self, staff_id: int, inbound: Inbound) -> Guidance:
        """One message from the staff member: what the customer said (or a pressed option), or the
        answer to "did you finish this step?". KeyError when no session is open."""
        with self.service.store.reading() as session:
            row = session.get(StaffModeRow, staff_id)
            if row is None or row.mode != MODE:
                raise KeyError(staff_id)
            data = dict(row.data)
        if inbound.text is not None and normalize(inbound.text).casefold() in self._ends:
            return self.stop(staff_id)
        if inbound.choice is None and not (inbound.text or "").strip() and data["turns"]:
            return Guidance(notes=[self.assist.texts.blank.text])
        if inbound.text is not None:
            inbound = Inbound(text=unprefixed(self.assist, inbound.text), as_sent=inbound.text)
        if data["case"] is not None:
            answer = self._yes_no(inbound)
            if answer is not None:
                return self._confirm(staff_id, data, answer)
        return self._complaint(staff_id, data, inbound)

    def stop(self, staff_id: int) -> Guidance:
        """Ends the session; the case, if one was opened, stays open with the staff member."""
        with self.service.store.reading() as session:
            row = session.get(StaffModeRow, staff_id)
            case = row.data.get("case") if row is not None and row.mode == MODE else None
        guide = Guidance(notes=[] if case else [self.assist.texts.no_case.text])
        return self._end(staff_id, guide)

    # -- the complaint, on the engine ---------------------------------------------------------------

    def _complaint(self, staff_id: int, data: dict, inbound: Inbound) -> Guidance:
        before = self._conversation(data["key"])
        guides: list[Guidance] = []

        def within(tx: TurnTx, turn: Turn) -> None:
            """In the turn's own transaction: word the turn for the staff member, claim the case it
            opened, and keep the session's state (one message, one transaction)."""
            data["turns"] += 1
            shown = data["shown"]
            guide = read_turn(self.assist, self.engine, before, tx.conversation, turn, shown, first=data["turns"] == 1)
            for event in turn.events:
                if event.kind != "case_opened":
                    continue
                number = event.data["number"]
                self.casework.claim_in(tx.session, number, staff_id)
                if data["case"] is not None:  # a second complaint of the same call
                    guide.notes.append(staff_text(self.assist.texts.also_opened, number=number))
                    continue
                data.update(case=number, phase="step")
                guide.notes.append(staff_text(self.assist.texts.opened, number=number))
                guide.do = ladder(self.engine, event.data["category"], tx.now)
                guide.rules = self._rules("case", shown)
            if data["case"] is not None:
                if tx.conversation.state in (AFTER, MENU):
                    guide.options = []  # the customer's "anything else?" menu: the staff member's question instead
                self._ask(guide, data, tx.session)
            self._save(tx.session, staff_id, data)
            guides.append(guide)

        self.service.handle(CHANNEL, data["key"], inbound, within=within)
        return guides[-1]

    def _conversation(self, key: str) -> Conversation:
        with self.service.store.reading() as session:
            row = queries.conversation_of(session, CHANNEL, key)
            return Conversation() if row is None else row.to_conversation()

    # -- the handling steps -------------------------------------------------------------------------

    def _confirm(self, staff_id: int, data: dict, answer: bool) -> Guidance:
        """The staff member's yes or no to the question asked after the case opened: did they do the step
        that acts now; then, is it solved on the spot (the case is closed) or left open to its deadline."""
        number, texts = data["case"], self.assist.texts
        guide = Guidance()
        with self.service.store.writing() as session:
            card = self.casework.card_in(session, number)
            if data["phase"] == "step" and answer:
                self.casework.confirm_step_in(session, number, staff_id, card.step - 1)
                guide.notes.append(staff_text(texts.confirmed, step=card.step))
                guide.rules = self._rules("confirm", data["shown"])
                data["phase"] = "resolve"
                self._ask(guide, data, session)
            elif data["phase"] == "step":
                guide.notes.append(staff_text(texts.not_yet, step=card.step, deadline=card.deadline_text))
            elif answer:
                self.casework.resolve_in(session, number, staff_id)
                guide.notes.append(staff_text(texts.resolved, number=number))
            else:
                guide.notes.append(staff_text(texts.kept_open, number=number, deadline=card.deadline_text))
            ended = guide.question is None
            self._save(session, staff_id, data, ended=ended)
        if ended:
            guide.notes.append(texts.finished.text)
            guide.rules += self._rules("done", [])
            guide.ended = True
        return guide

    def _ask(self, guide: Guidance, data: dict, session) -> None:
        """Asks the question of the phase after the case opened; as buttons unless the customer's own
        options (a second complaint offered) are on screen, which then keep the numbers."""
        texts = self.assist.texts
        if data["phase"] == "step":
            card = self.casework.card_in(session, data["case"])
            guide.question = staff_text(texts.confirm, step=card.step, role=card.role_name)
        else:
            guide.question = texts.resolve_ask.text
        if not guide.options:
            guide.options = [Option(texts.yes_label.text, YES), Option(texts.no_label.text, NO)]

    def _yes_no(self, inbound: Inbound) -> bool | None:
        if inbound.choice in (YES, NO):
            return inbound.choice == YES
        if inbound.choice is not None or _QUESTION.search(inbound.text or ""):
            return None  # "嗯？这个怎么算" is a question, not a yes
        index = pick_option(inbound.text or "", [self.assist.yes_words, self.assist.no_words])
        return None if index is None else index == 0

    def _end(self, staff_id: int, guide: Guidance) -> Guidance:
        with self.service.store.writing() as session:
            self._save(session, staff_id, {}, ended=True)
        guide.notes.append(self.assist.texts.finished.text)
        guide.rules += self._rules("done", [])
        guide.ended = True
        return guide

    # -- the session's state -------------------------------------------------------------------------

    def _rules(self, moment: str, shown: list[str]) -> list[Rule]:
        return rules_for(self.assist, [moment], None, shown)

    @staticmethod
    def _save(session, staff_id: int, data: dict, ended: bool = False) -> None:
        row = session.get(StaffModeRow, staff_id)
        if row is None or row.mode != MODE:
            return
        if ended:
            session.delete(row)
        else:
            row.data = dict(data)  # a new dict: the JSON column is saved when it is replaced
            session.add(row)


# -- the terminal -------------------------------------------------------------------------------------

def run_assist(assistant: Assistant, staff_id: int, source: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    """Runs one guided complaint in the terminal: typed, or one message per line on stdin."""
    zone = assistant.engine.zone
    guide = assistant.start(staff_id)
    interactive = source.isatty()
    if not interactive and hasattr(source, "reconfigure"):
        source.reconfigure(errors="replace")
    while True:
        print(safe(guide.text(assistant.assist, zone)), file=out, flush=True)
        if guide.ended:
            return
        line = _read(source, interactive, out)
        if line is None or line.strip() in QUIT_WORDS:
            print(safe(assistant.stop(staff_id).text(assistant.assist, zone)), file=out, flush=True)
            return
        guide = assistant.take(staff_id, _inbound(line, guide.options))


def _inbound(line: str, options: list[Option]) -> Inbound:
    """A typed option number is the press of that option, as a button would be."""
    said = line.strip()
    if said.isdigit() and 1 <= int(said) <= len(options):
        return Inbound(choice=options[int(said) - 1].value)
    return Inbound(text=line)


def _read(source: TextIO, interactive: bool, out: TextIO) -> str | None:
    return read_line(source, interactive, out, "客户/您: ", "> ")
