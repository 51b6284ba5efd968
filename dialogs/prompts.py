"""What is asked now and how it is said: the question, its buttons and their keys, the facts still missing,
and the rendering of content texts.

A part of the Engine (dialogs/engine.py), kept apart by what it does; pure like the rest of the engine."""

from __future__ import annotations

from typing import Any

from dialogs.conversation import AFTER, CLARIFY, MENU, REASON, TOPIC, Conversation, Option, Reply
from dialogs.render import render, template_values
from dialogs.schema import Category, Fact, FactType, State, Text
from dialogs.turn import CONFIRM, START, Run


class PromptsMixin:
    """Asks what is asked now, and says content texts."""

    def _prompt(self, run: Run, resume: bool = False) -> None:
        """Asks again whatever the conversation is waiting for, after what is to be said first (the lead)."""
        conv = run.conversation
        texts = self.shared.texts
        lead = run.lead + self._noted_line(run)
        if resume and conv.category in self.content.categories:
            lead += render(texts.resume.text, template_values("", category=self._category(conv).name))
        run.lead, run.noted = "", []
        if conv.memory.confirming is not None:
            return self._confirm(run, conv.memory.confirming)
        if conv.state == CLARIFY:
            return self._say(run, texts.which_one, options=self._current_options(conv), lead=lead)
        if conv.category is None:
            if lead:
                self._say_plain(run, lead.rstrip())
            return self._after(run, ask=not lead) if conv.state == AFTER else self._show_menu(run, with_prompt=True)
        if conv.state == TOPIC:
            asked = self.fees.prompt(conv.category, conv.facts)
            if asked is None:
                text = render((texts.topic_follow_up if run.turn.replies else texts.topic_more).text, self._blank_values())
                if text in conv.memory.last_lines and run.turn.replies and not lead:
                    last = run.turn.replies.pop()  # said a moment ago: the answer alone, with its button
                    return self._say_plain(run, last.text, last.options or self._current_options(conv))
                return self._say_plain(run, lead + text, options=self._current_options(conv))
            return self._say_plain(run, lead + asked, options=self._current_options(conv))
        pending = self._pending_fact(conv)
        if pending is None and self._state(conv).ask is None:
            # nothing left to ask here ("我刚说了啊 …" gave the last fact as a protest): on to what follows
            if lead:
                self._say_plain(run, lead.rstrip())
            return self._settle(run)
        text = self._prompt_text(conv, pending) if pending is not None else self._state(conv).ask
        assert text is not None
        self._say(run, text, options=self._current_options(conv), lead=lead)

    def _show_menu(self, run: Run, with_prompt: bool = True) -> None:
        run.conversation.state = MENU if run.conversation.state == AFTER else run.conversation.state
        options = self._current_options(run.conversation)
        if with_prompt or not run.turn.replies:
            self._say(run, self.shared.texts.menu_prompt, options=options)
        else:  # attach the menu to the reply just given
            last = run.turn.replies.pop()
            run.turn.replies.append(Reply(last.text, tuple(options)))

    def _current_options(self, conv: Conversation) -> list[Option]:
        key = self._question_key(conv)
        if conv.memory.confirming is not None:
            labels = ["是，不办了" if conv.memory.confirming == "cancel" else "是，结束", "不，继续办理"]
        elif conv.state == CLARIFY:
            labels = [self._names(label)[0] for label in conv.offered] + [self.shared.back_label]
        elif conv.state == AFTER:
            labels = self._follow_up_labels()
        elif conv.category is None:
            labels = [names[0] for names, _ in self._menu_entries()]
        elif conv.state == TOPIC:
            labels = [self.shared.back_label]
        else:
            pending = self._pending_fact(conv)
            if pending is not None:
                fact = self._fact(conv, pending)
                labels = list((fact.options if fact else None) or [])
                fact_type = self._fact_type(conv, pending)
                if conv.memory.misses >= 2 or (fact_type.kind == "pattern" and conv.memory.misses >= 1):
                    if fact_type.skip_label:
                        labels.append(fact_type.skip_label)
                    labels.append(self.shared.follow_up.human)
            else:
                labels = [o.label for o in self._state(conv).options]
                if conv.memory.misses >= 2:
                    labels.append(self.shared.follow_up.human)
        return [Option(label, f"{key}:{i}") for i, label in enumerate(labels)]

    def _options(self, conv: Conversation, labels: list[str]) -> list[Option]:
        key = self._question_key(conv)
        return [Option(label, f"{key}.more:{i}") for i, label in enumerate(labels)]

    def _question_key(self, conv: Conversation) -> str:
        """Names the question now asked, short enough for Telegram's 64-byte button data."""
        if conv.memory.confirming is not None:
            return CONFIRM
        if conv.category is None:
            # menu, clarify or after; waiting for a low rating's reason, the buttons shown are the menu's
            return MENU if conv.state == REASON else conv.state
        pending = self._pending_fact(conv)
        return f"{conv.category}.{conv.state}" + (f".{pending}" if pending else "")

    def _menu_entries(self) -> list[tuple[list[str], str]]:
        return [(self._names(c), c) for c in self.shared.menu]

    def _entry(self, label: str) -> Any:
        """The category or topic with this id, or None."""
        return self.content.categories.get(label) or self.content.policies.topics.get(label)

    def _names(self, label: str) -> list[str]:
        entry = self._entry(label)
        return [entry.menu_label, entry.name]

    def _pending_fact(self, conv: Conversation) -> str | None:
        """The fact asked for now: the first of the state's facts not given, or what stands in for
        one the customer cannot give (no waybill: the sender and route)."""
        if conv.category is None or conv.state in (TOPIC, START) or conv.category not in self.content.categories:
            return None
        skipped = conv.memory.skipped
        for fact_id in self._state(conv).collect:
            if fact_id in conv.facts:
                continue
            if fact_id not in skipped:
                return fact_id
            instead = self._fact_type(conv, fact_id).instead
            if instead is not None and instead.id not in conv.facts and instead.id not in skipped:
                return instead.id
        return None

    def asked_fact(self, conv: Conversation) -> tuple[str, str] | None:
        """The fact the conversation waits for, with the label staff know it by (运单号), if any."""
        fact_id = self._pending_fact(conv)
        if fact_id is None:
            return None
        fact = self._fact(conv, fact_id)
        if fact is not None:
            return fact_id, fact.label
        instead = next(t.instead for t in self.shared.fact_types.values() if t.instead and t.instead.id == fact_id)
        return fact_id, instead.label

    def _fact(self, conv: Conversation, fact_id: str) -> Fact | None:
        """The category's fact (None for a stand-in such as the shipment for a missing waybill)."""
        return self._category(conv).facts.get(fact_id)

    def _fact_type(self, conv: Conversation, fact_id: str) -> FactType:
        fact = self._fact(conv, fact_id)
        if fact is not None:
            return self.shared.fact_types[fact.type]
        return self.shared.fact_types["text"]

    def _prompt_text(self, conv: Conversation, fact_id: str) -> Text:
        fact = self._fact(conv, fact_id)
        if fact is not None:
            return fact.prompt
        instead = next(t.instead for t in self.shared.fact_types.values() if t.instead and t.instead.id == fact_id)
        return instead.prompt  # type: ignore[union-attr]

    def _option_words(self, fact: Fact) -> list[list[str]]:
        return [[option, *fact.option_words.get(option, [])] for option in fact.options or []]

    def _category(self, conv: Conversation) -> Category:
        return self.content.categories[conv.category]  # type: ignore[index]

    def _state(self, conv: Conversation) -> State:
        return self._category(conv).flow.states[conv.state]

    def _role_name(self, role: str) -> str:
        return self.shared.roles[role].name if role in self.shared.roles else role

    def _blank_values(self) -> dict[str, Any]:
        return template_values("")

    def _noted_line(self, run: Run) -> str:
        """"好的，运单号、联系电话已经记下了。" for what this message gave beside the answer (each named once), and
        forgets it: said once."""
        noted, run.noted = list(dict.fromkeys(run.noted)), []
        return render(self.shared.texts.noted.text, template_values("", what="、".join(noted))) if noted else ""

    def _said_last(self, conv: Conversation, text: Text) -> bool:
        """Whether kefu said this text (with no values of its own) in its last turn."""
        return render(text.text, self._blank_values()) in conv.memory.last_lines

    def _values(self, run: Run, **extra: Any) -> dict[str, Any]:
        conv = run.conversation
        entry = self._entry(conv.category) if conv.category else None
        values = template_values(conv.salutation or "", conv.facts, conv.case_number,
                                 category=entry.name if entry else "")
        values.update(extra)
        return values

    def _say(self, run: Run, text: Text, options: list[Option] | tuple = (), lead: str = "", **extra: Any) -> None:
        self._say_plain(run, lead + render(text.text, self._values(run, **extra)), options)

    def _say_plain(self, run: Run, text: str, options: list[Option] | tuple = ()) -> None:
        run.turn.replies.append(Reply(text, tuple(options)))
