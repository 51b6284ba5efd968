"""The repair moves every flow shares: "sure?" before dropping a complaint, a person in any words, goodbye,
the customer's own cases, the short follow-up after a case, corrections after it was opened.

A part of the Engine (dialogs/engine.py), kept apart by what it does; pure like the rest of the engine."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dialogs.conversation import AFTER, CLARIFY, TOPIC, CaseView, Event, Reply
from dialogs.entities import extract
from dialogs.matching import normalize, option_number, pick_option
from dialogs.render import Facts, render
from dialogs.repairs import Wants
from dialogs.turn import START, Run

NONE_OF_THEM = ("都不是", "都不对", "都没有", "不是这些", "没有这个", "不是这个")  # said to the problems offered


class MovesMixin:
    """The repair moves every flow shares."""

    def _confirm(self, run: Run, what: str) -> None:
        """Asks whether the customer really means to drop the open complaint."""
        conv = run.conversation
        category = self._category(conv)
        if what == "cancel" and conv.memory.checking and not any(
                fid in conv.facts for fid in self._state(conv).collect if not category.facts[fid].describes):
            return self._cancel(run)  # a check kefu offered on a disputed charge, nothing given yet: leaves at once
        conv.memory.confirming = what
        text = self.shared.texts.confirm_cancel if what == "cancel" else self.shared.texts.confirm_bye
        self._say(run, text, options=self._current_options(conv), category=self._category(conv).name)

    def _confirmed(self, run: Run, wants: Wants, text: str) -> bool:
        """Acts on the answer to "sure?"; False when the message is no yes or no (it is handled as usual)."""
        conv = run.conversation
        # The options shown are yes, then no: "1" or "2" answers this question, not the one beneath it.
        picked = pick_option(text, [[o.label] for o in self._current_options(conv)])
        decision = wants.decision if picked is None else picked == 0
        what, conv.memory.confirming = conv.memory.confirming, None
        if decision is None:
            return False
        if not decision:
            run.lead = render(self.shared.texts.go_on.text, self._blank_values())
            found = run.entities
            if found.phones or found.waybills or found.addresses:
                return False  # "不是，还是查一下吧，电话139…": going on, and the phone is taken as usual
            self._prompt(run)
            return True
        if what == "bye":
            run.turn.events.append(Event("conversation_cancelled", {"category": conv.category, "state": conv.state}))
            self._leave(run)
            self._goodbye(run)
        else:
            self._cancel(run)
        return True

    def _cancel(self, run: Run) -> None:
        conv = run.conversation
        run.turn.events.append(Event("conversation_cancelled", {"category": conv.category, "state": conv.state}))
        self._leave(run)
        self._say(run, self.shared.texts.cancelled)
        self._after(run)

    def _handoff(self, run: Run, text: str) -> None:
        """A person, asked for in any words: recorded on a case (opened now with what is known, if
        there is none), and the customer told who will contact them and by when: the handoff's own
        contact time (an hour of business time by default), whatever the case's first step allows."""
        conv, texts = run.conversation, self.shared.texts
        handed = run.ledger.find_case(conv.memory.handed) if conv.memory.handed else None
        if handed is not None and handed.status == "open" and conv.category not in self.content.categories:
            return self._say(run, texts.handoff_again, **self._promise(run, handed.number))
        conv.memory.promised = None
        promise = self._promise(run, None)
        conv.memory.promised = promise["step"]["deadline"]
        number = self._case_for_person(run, text)
        run.turn.events.append(Event("human_requested", {"category": conv.category, "case": number, "words": text}))
        promise["case"]["number"] = number
        facts = dict(conv.facts)
        self._leave(run)
        conv.memory.handed = number or ""
        self._say_plain(run, render(texts.handoff.text, {**self._values(run), **promise, "facts": Facts(facts)}))

    def _case_for_person(self, run: Run, text: str) -> str:
        """The case a request for a person goes on: the complaint in progress (opened now), the customer's
        open case, the complaint the request also makes or the one kefu was asking about, else a handoff case."""
        conv = run.conversation
        if conv.category in self.content.categories:
            self._absorb(run, text)  # "我找你们经理 电话130…": the phone given with the request goes on the case
            return self._open_case(run, self._category(conv), announce=False)[0]
        case = next((c for c in run.ledger.my_cases() if c.status == "open"), None)
        if case is not None:
            # "算了 我找你们经理 电话130…": the phone given with the request goes on that case, and is not asked for
            given = self._numbers_given(run)
            if given:
                run.turn.events.append(Event("case_facts_corrected", {"case": case.number, "facts": given}))
                conv.facts.update(given)
            return case.number
        complaint = self._complaint_beside_handoff(run, text)
        label, told = (complaint, text) if complaint is not None else (None, "")  # "运费乱收…我要投诉到12315"
        if complaint is None and conv.state == CLARIFY:
            # Asked which problem it was, and a person asked for instead: the likeliest problem when the router
            # is at least fairly sure of it, else the person finds out (a guess would put a false kind of
            # case in the reports: "我货呢" → 退货).
            run.entities = extract(f"{conv.offered_text}\n{text}", self.places, today=self._today(run))
            reading = self.router.classify(self._unnumbered(run, conv.offered_text)) if self.router else None
            # "都不是，我要对账单" said to the choice: the problems offered are ruled out, none is guessed
            ruled_out = any(normalize(line).startswith(NONE_OF_THEM) for line in conv.offered_text.split("\n")[1:])
            if (conv.offered and reading is not None and reading.label == conv.offered[0] and not ruled_out
                    and reading.confidence >= self.routing.threshold):
                label, told = reading.label, conv.offered_text
        if label in self.content.categories:
            conv.category, conv.state, conv.facts = label, START, {}
            self._prefill(run, told)
            return self._open_case(run, self._category(conv), announce=False)[0]
        facts = self._numbers_given(run)
        said = text.strip() if text.strip() and not self._command(text) else ""
        asked = "\n".join(t for t in (conv.offered_text.strip() if conv.state == CLARIFY else "", said) if t)
        if asked:
            facts["request"] = asked
        conv.facts = facts
        return self._open_case(run, self.content.handoff, announce=False)[0]

    def _out_of_range(self, run: Run, text: str) -> bool:
        """A number no option has, where a choice is asked: the valid range, and the question again."""
        conv = run.conversation
        number = option_number(text)
        if number is None or conv.state == TOPIC:
            return False
        pending = self._pending_fact(conv)
        choosing = conv.category is None or (pending is None and bool(self._state(conv).options)) or (
            pending is not None and self._fact_type(conv, pending).kind == "choice")
        options = self._current_options(conv)
        if not choosing or not options or 1 <= number <= len(options):
            return False
        self._say(run, self.shared.texts.out_of_range, options=options, what=str(number), step={"count": len(options)})
        return True

    def _goodbye(self, run: Run) -> None:
        """Says goodbye; the event lets a channel close (the terminal chat ends there)."""
        run.turn.events.append(Event("said_goodbye"))
        self._say(run, self.shared.texts.goodbye)

    def _numbers_given(self, run: Run) -> dict[str, str]:
        """The first waybill and the first phone the message gives, as facts."""
        found = run.entities
        return {k: v[0] for k, v in (("waybill", found.waybills), ("phone", found.phones)) if v}

    def _promise(self, run: Run, number: str | None) -> dict[str, Any]:
        """Who will be in touch after a handoff and by when: the time told on the handoff, kept (a phone given
        later does not move it), else the handoff's own contact time (an hour of business time by default)."""
        contact = self.content.handoff.handling[0]
        values = self._step_values(contact.role, self.deadline(run.ledger.now, contact), number)
        if run.conversation.memory.promised:
            values["step"]["deadline"] = run.conversation.memory.promised
        return values

    def _step_values(self, role: str, deadline: datetime, number: str | None) -> dict[str, Any]:
        return {"step": {"role": self._role_name(role), "deadline": self.local_time(deadline)},
                "case": {"number": number}}

    def _my_cases(self, run: Run, quiet_menu: bool = False) -> None:
        """Tells the customer how their open cases stand, without their numbers being asked for."""
        cases = run.ledger.my_cases()
        texts = self.shared.texts
        before = len(run.turn.replies)
        if not cases:
            self._say(run, texts.no_my_cases)
        elif len(cases) == 1:
            self._case_progress(run, cases[0].number)
        else:
            lines = [self._progress_line(c) for c in cases]
            self._say(run, texts.my_cases, case={"list": lines})
        told = run.turn.replies[before:]
        if texts.status_again is not None and cases and run.said and self.repairs.has("not_called", run.said):
            run.turn.replies.insert(before, Reply(render(texts.status_again.text, self._blank_values())))  # sorry first
        elif texts.status_again is not None and any(r.text in line for r in told for line in run.conversation.memory.last_lines):
            del run.turn.replies[before:]  # "怎么还没人联系我" right after the status: not the status again, but sorry,
            self._say(run, texts.status_again)  # and a person now
        if not quiet_menu and run.conversation.category is None:
            self._after(run, ask=False)

    def _after(self, run: Run, ask: bool = True) -> None:
        """Offers the likely next steps (progress, another problem, a person, nothing) instead of the menu."""
        conv = run.conversation
        conv.state = AFTER
        options = self._current_options(conv)
        if ask or not run.turn.replies:
            self._say(run, self.shared.texts.anything_else, options=options)
        else:
            last = run.turn.replies.pop()
            run.turn.replies.append(Reply(last.text, tuple(options)))

    def _case_progress(self, run: Run, number: str) -> None:
        """Tells a customer where their case stands."""
        case = run.ledger.find_case(number)
        texts = self.shared.texts
        if case is None or not case.mine:
            # Case numbers are sequential; another customer's case is not shown, nor confirmed to exist.
            self._say(run, texts.status_not_found, case={"number": number})
        else:
            self._say_plain(run, self._progress_line(case))

    def _progress_line(self, case: CaseView) -> str:
        kind = self.content.case_kinds.get(case.category)
        role = self.shared.roles.get(case.role)
        return render(self.shared.texts.status.text, {**self._blank_values(), "case": {
            "number": case.number, "status": self.shared.case_statuses.get(case.status, case.status),
            "category": kind.name if kind else case.category, "open": case.status == "open",
        }, "step": {
            "number": case.step + 1, "role": role.name if role else case.role, "doing": role.doing if role else "",
            "deadline": self.local_time(case.deadline),
        }})

    def _corrects_case(self, run: Run, text: str, wants: Wants) -> bool:
        """A phone or waybill given after the case was opened or handed to a person (电话说错了，是139…):
        the customer's open case takes it, and staff see the change."""
        conv = run.conversation
        number = conv.memory.handed or conv.case_number
        found = run.entities
        if not number or not (found.phones or found.waybills):
            return False
        if not (wants.correction or conv.memory.handed or self._only_entities(run, text)):
            return False
        case = run.ledger.find_case(number)
        if case is None or case.status != "open" or not case.mine:
            return False
        facts = self._numbers_given(run)
        run.turn.events.append(Event("case_facts_corrected", {"case": number, "facts": facts}))
        run.noted = self._entity_labels(run)
        lead = self._noted_line(run)
        if conv.memory.handed:
            text, values = self.shared.texts.handoff_again, self._promise(run, number)
        else:
            text, values = self.shared.texts.case_updated, self._step_values(case.role, case.deadline, number)
        self._say_plain(run, lead + render(text.text, {**self._blank_values(), **values}))
        if run.after_case:  # still "anything else?": 谢谢 没了 next is goodbye
            self._after(run, ask=False)
        return True
