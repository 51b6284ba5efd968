"""A conversation about a fee or policy topic: the fee desk's answers, said with their buttons, and fee
questions asked on the side of a complaint.

A part of the Engine (dialogs/engine.py), kept apart by what it does; pure like the rest of the engine."""

from __future__ import annotations

from dialogs.content import HANDOFF
from dialogs.fees import FREIGHT_WORD, FeeAnswer
from dialogs.matching import normalize, pick_option
from dialogs.policies import topic_answers, topic_text
from dialogs.repairs import Wants
from dialogs.turn import VAGUE, Run


class FeeTalkMixin:
    """Talks about fees and policies, as a topic or on the side of a complaint."""

    def _topic_text(self, run: Run, text: str, wants: Wants) -> None:
        conv, texts = run.conversation, self.shared.texts
        if wants.bye:  # "谢谢 没了": thanked and done, so goodbye rather than "anything else?"
            self._leave(run)
            return self._goodbye(run)
        if wants.cancel or wants.thanks:
            self._leave(run)
            # "哦", "好吧" after an answer: heard, not thanked for (不客气 would answer thanks never said)
            self._say(run, texts.ack_reply if wants.ack and texts.ack_reply is not None else texts.thanks_reply)
            return self._after(run, ask=not wants.ack)
        if pick_option(text, [[self.shared.back_label]]) is not None and normalize(text) in ("1", self.shared.back_label):
            return self._global_move(run, "menu")
        if self.fees.prompt(conv.category, conv.facts) is not None and self.repairs.cannot_give(text, [FREIGHT_WORD]):
            conv.facts.clear()  # "运费还不知道": the quote is not asked for again; what else the message asks is answered
        if self.repairs.has("resume", text) and conv.offered_text:
            # "那刚才的送货的事呢" after a fee asked while the problem was being chosen: that problem again
            told = conv.offered_text
            self._leave(run)
            return self._from_menu(run, told, self.repairs.read(told))
        chosen = self.fees.by_title(conv.category, text)  # a button of the answers' titles
        if chosen:
            for line in chosen:
                self._say_plain(run, line)
            return self._prompt(run)
        if run.entities.waybills and self._waybill_invited(run) == HANDOFF:
            # "运单 PT20261120 代收3500" after "把运单号发给我，我请工作人员帮您核实": the amount kept for 手续费扣了多少
            self._remember_amounts(run, {f"amount:{fee}": str(amount)
                                         for fee, amount in self.fees.amounts_told(text, run.entities, conv.category).items()})
            return self._handoff(run, text)
        if self._offer_check(run, text):
            return
        answer = self.fees.answer(text, run.entities, conv.category, conv.facts, self._today(run))
        self._remember_amounts(run, conv.facts)
        if answer.understood:
            if answer.topic and answer.topic != conv.category:  # the figures so far stay: "加起来一共多少"
                conv.category = conv.memory.topic = answer.topic
            return self._fee_reply(run, answer, text)
        figure = self.fees.prompt(conv.category, conv.facts)
        if figure is not None and wants.cannot_give:  # "不知道" when the freight is asked: the rule, and no figure asked again
            conv.facts.clear()
            return self._fee_reply(run, self.fees.overview(conv.category), text)
        if figure is not None and self.fees.names_topic(text) is None and not self._sure_complaint(run, text):
            # "货是三个立方", "那一共多少钱" while the freight is asked: the figure the quote needs, asked again
            return self._say_plain(run, figure)
        if self._change_topic(run, text, eager=True):
            return
        # "地址厦门湖里区… 电话138…" after 能不能上门取件 and the fee asked beside it: the request's details, for a person
        if conv.memory.served and self._request_details(run, text, conv.memory.served):
            return
        if self._only_entities(run, text):  # a waybill or a phone after a fee's answer: kept for what comes next
            self._leave(run)
            return self._from_menu(run, text, wants)
        if self._reads_as_complaint(run, text):  # "我要投诉 货没送到" inside a fee topic: never trapped in it
            self._leave(run)
            return self._from_menu(run, text, wants)
        if answer.options:
            self._say(run, texts.topic_which, options=self._options(conv, answer.options),
                      category=self._entry(conv.category).name)
            return
        self._say(run, texts.fallback)
        self._prompt(run)

    def _amounts_priced(self, run: Run) -> dict[str, str]:
        """The amounts priced earlier in the conversation, as the fee desk keeps them among a topic's facts."""
        return {f"amount:{fee}": amount for fee, amount in run.conversation.memory.amounts.items()}

    def _remember_amounts(self, run: Run, facts: dict[str, str]) -> None:
        run.conversation.memory.amounts.update({key.split(":", 1)[1]: value for key, value in facts.items()
                                                if key.startswith("amount:")})

    def _waybill_invited(self, run: Run, lines: list[str] | None = None) -> str | None:
        """The check an answer said last turn (or in these lines) invites a waybill for (its waybill_check), if any."""
        conv = run.conversation
        topic = self.content.policies.topics.get(conv.category or "")
        if topic is None:
            return None
        said = topic_answers(conv.category, self.content.policies)
        lines = conv.memory.last_lines if lines is None else lines
        return next((a.waybill_check for aid, a in topic.answers.items()
                     if a.waybill_check and any(said[aid] in line for line in lines)), None)

    def _reads_as_complaint(self, run: Run, text: str) -> bool:
        """A message the fee desk did not understand that reads as a complaint, however unsure the reading
        (which the menu's understanding then asks about), and gives no figure for the fee."""
        reading = self._understand(run, text)
        return (reading is not None and not run.entities.money
                and (reading.label == VAGUE or reading.label in self.content.categories))

    def _fee_reply(self, run: Run, answer: FeeAnswer, text: str = "") -> None:
        conv, texts = run.conversation, self.shared.texts
        if answer.problem is not None:
            self._say(run, texts.amount_not_positive if answer.problem == "not_positive" else texts.amount_too_large)
            return self._prompt(run)
        for line in answer.texts:
            self._say_plain(run, line)
        if answer.check == HANDOFF:  # a matter only a person can look into (货款没到账): handed over at once
            return self._handoff(run, text)
        if run.entities.waybills and self._waybill_invited(run, answer.texts) == HANDOFF:
            return self._handoff(run, text)  # "…什么时候能到账 单号SH…": the waybill the answer asks for is here already
        if answer.check is not None:  # a disputed charge: the check collects the waybill and opens the case
            return self._start(run, answer.check, text, begin="check")
        if answer.invites:  # the topic's overview ends with its own invitation to send figures
            return self._say_plain(run, run.turn.replies.pop().text, self._current_options(conv))
        if answer.options and answer.texts:  # storage lines to choose from, on the question just asked
            last = run.turn.replies.pop()
            return self._say_plain(run, last.text, self._options(conv, answer.options + [self.shared.back_label]))
        if answer.options:
            asked = self.fees.prompt(conv.category, conv.facts)
            if asked is not None:  # the storage line is asked for
                return self._say_plain(run, asked, self._options(conv, answer.options + [self.shared.back_label]))
            return self._say(run, texts.topic_which, options=self._options(conv, answer.options),
                             category=self._entry(conv.category).name)
        self._prompt(run)

    def _offer_check(self, run: Run, text: str) -> bool:
        """The customer says they were charged more than the standard: the standard, and a check offered."""
        answer = self.fees.charged_check(text, run.entities)
        if answer is None or "pricing" not in self.content.categories:
            return False
        for line in answer.texts:
            self._say_plain(run, line)
        self._leave(run)
        self._start(run, "pricing", text, begin="check")  # the check collects the waybill and opens the case
        return True

    def _side_fee(self, run: Run, text: str) -> bool:
        """Answers a fee question asked on the side of a complaint; the storage quote needs its figures in one go."""
        conv, texts = run.conversation, self.shared.texts
        facts = self._amounts_priced(run)  # the amounts only: a storage quote beside a complaint needs its figures in one go
        answer = self.fees.answer(text, run.entities, conv.memory.topic, facts, self._today(run), opening=True)
        if not answer.understood and not answer.options:
            return False
        self._remember_amounts(run, facts)
        conv.memory.topic = answer.topic
        for line in answer.texts:
            self._say_plain(run, line)
        if answer.problem:
            self._say(run, texts.amount_too_large if answer.problem == "too_large" else texts.amount_not_positive)
        elif answer.topic == "storage" and not answer.texts:
            self._say_plain(run, topic_text("storage", self.content.policies.storage.ask, self.content.policies)
                            if self.content.policies.storage.ask else "")
        return True
