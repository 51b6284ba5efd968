"""The dialog engine: one state machine per category, driving any conversation one message at a time.

Pure code: it reads the content, changes the Conversation it is given and returns a Turn.
It does no I/O; the time, new case numbers and case look-ups come from the caller's Ledger."""

from __future__ import annotations

from datetime import datetime, timedelta
import re
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from transitions import Machine

from dialogs.content import Content
from dialogs.conversation import CLARIFY, MENU, Conversation, Event, Inbound, Ledger, Option, Reply, Turn
from dialogs.entities import Entities, extract
from dialogs.matching import check_fact, is_number, normalize, pick_option
from dialogs.render import render, template_values
from dialogs.schema import Category, State, Text
from dialogs.topics import TopicDesk

OTHER = "other"  # the router's label for messages that are none of kefu's topics
VAGUE = "vague"  # the router's label for a complaint that names no category ("投诉")
START = "start"  # every machine's entry: 'begin' leads from here to the flow's initial state
TOPIC = "topic"  # the one state of a conversation about a fee or policy topic
REASON = "reason"  # in no category, after a low rating: the next message says why
MAX_MOVES = 50  # a guard: the validator already rejects loops that never wait for the customer
# A case number anywhere in a message is a request for that case's progress: KF-20261127-0001.
CASE_NUMBER = re.compile(r"KF-?(\d{8})-?(\d{4,6})(?!\d)", re.IGNORECASE)  # 4 digits, more on a busy day


class _Run:
    """What a machine is triggered on: one conversation during one turn."""

    def __init__(self, conversation: Conversation, turn: Turn, ledger: Ledger):
        self.conversation = conversation
        self.turn = turn
        self.ledger = ledger
        self.first_contact = False
        self.entities = Entities()  # what the message mentions: waybill, phone, amounts, how to address
        self.understood: Any = None  # the router's reading of the message, once asked

    @property
    def state(self) -> str:
        return self.conversation.state

    @state.setter
    def state(self, value: str) -> None:
        self.conversation.state = value


class Router(Protocol):
    def classify(self, text: str) -> Any:
        """Returns an object with label, confidence and candidates ((label, confidence), best first)."""


class Engine:
    """Runs conversations over the loaded content; build once, share across all conversations.

    Without a router, customers choose from the menu by number or name; with one, free text is
    understood too (see dialogs/intents.py)."""

    def __init__(self, content: Content, router: Router | None = None):
        self.content = content
        self.router = router
        self.shared = content.shared
        self.routing = content.shared.routing
        # Clauses end at punctuation or at a joining word (而且, 还有): each may be a complaint of its own.
        self._clauses = re.compile("|".join([r"[,.;!?，。；！？、]"] + [re.escape(w) for w in self.routing.joiners]))
        self.zone = ZoneInfo(self.shared.timezone)
        self._commands = {
            normalize(word).casefold(): move
            for move, words in self.shared.commands.model_dump().items()
            for word in words
        }
        self.machines = {cid: self._build_machine(c) for cid, c in content.categories.items()}
        self.topics = TopicDesk(content.policies)

    # -- building ---------------------------------------------------------------------------

    def _build_machine(self, category: Category) -> Machine:
        states: list[dict[str, Any]] = [{"name": START}]
        transitions = [{"trigger": "begin", "source": START, "dest": category.flow.initial}]
        for name, state in category.flow.states.items():
            states.append({"name": name, "on_enter": [self._entered]})
            if state.goto:
                transitions.append({"trigger": "next", "source": name, "dest": state.goto})
            for i, option in enumerate(state.options):
                transitions.append({"trigger": f"option{i}", "source": name, "dest": option.goto})
        # model=None: the machine is shared; each trigger names the conversation it acts on.
        return Machine(
            model=None, states=states, transitions=transitions, initial=START,
            auto_transitions=False, send_event=True,
        )

    # -- one message ------------------------------------------------------------------------

    def handle(self, conversation: Conversation, inbound: Inbound, ledger: Ledger) -> Turn:
        """Takes one customer message and returns the replies and events; updates the conversation."""
        run = _Run(conversation, Turn(), ledger)
        if not self._known(conversation):  # stored under content that has since changed
            run.turn.events.append(Event("conversation_reset", {"category": conversation.category, "state": conversation.state}))
            self._leave(run)
        if not conversation.greeted:
            conversation.greeted = True
            run.first_contact = True
            self._say(run, self.shared.texts.greeting)
            if inbound.choice is None and (not normalize(inbound.text or "") or self._command(inbound.text) == "hello"):
                self._show_menu(run)
                return run.turn
        if inbound.choice is not None:
            self._on_choice(run, inbound.choice)
        else:
            self._on_text(run, inbound.text or "")
        return run.turn

    def _known(self, conv: Conversation) -> bool:
        """Tells whether the conversation's category and state exist in the loaded content."""
        if conv.category is None:
            return conv.state in (MENU, CLARIFY, REASON)
        if conv.category in self.content.policies.topics:
            return conv.state == TOPIC
        category = self.content.categories.get(conv.category)
        return category is not None and conv.state in category.flow.states

    def _on_text(self, run: _Run, text: str) -> None:
        conv = run.conversation
        said = normalize(text)  # folded once: a long message is costly to fold
        if not said:
            self._say(run, self.shared.texts.empty_message)
            return self._prompt(run)
        move = self._commands.get(said.casefold())
        if move is not None:
            return self._global_move(run, move)
        asked = CASE_NUMBER.search(said)
        if asked:
            return self._case_progress(run, f"KF-{asked.group(1)}-{asked.group(2)}")
        if conv.state == REASON and conv.case_number:  # why the customer rated a closed case low
            run.turn.events.append(Event("rating_reason", {"case": conv.case_number, "reason": text}))
            conv.state = MENU
            self._say(run, self.shared.texts.rate_reason_thanks)
            return self._show_menu(run)
        run.entities = extract(text, self.routing.places, today=self._today(run))
        if run.entities.salutation:
            conv.salutation = run.entities.salutation
        if conv.category is None:
            return self._from_menu(run, text)
        if conv.category in self.content.policies.topics:
            return self._topic_text(run, text)
        state = self._state(conv)
        pending = self._pending_fact(conv)
        if pending is not None:
            return self._take_fact(run, pending, text)
        index = pick_option(text, [[o.label] for o in state.options])
        if index is not None:
            return self._trigger(run, f"option{index}")
        if not self._change_topic(run, text):
            self._prefill(run)
            self._say(run, self.shared.texts.choose_again)
            self._prompt(run)

    # -- understanding free text -------------------------------------------------------------

    def _from_menu(self, run: _Run, text: str) -> None:
        """Starts what a message outside any category asks for: an offered choice, a menu entry, or free text."""
        conv = run.conversation
        if conv.state == CLARIFY:
            offered, source = conv.offered, conv.offered_text
            # The options shown are the offered ones, then back to the menu: a number counts against
            # that list, never against the main menu's numbers the customer cannot see now.
            index = pick_option(text, [self._names(label) for label in offered] + [[self.shared.back_label]])
            if index is None and is_number(text):
                self._say(run, self.shared.texts.choose_again)
                return self._prompt(run)
            conv.state, conv.offered, conv.offered_text = MENU, [], ""
            if index == len(offered):
                return self._show_menu(run)
            if index is not None:
                # The waybill or phone in the message that led to the offer is not asked again.
                run.entities = extract(f"{source}\n{text}", self.routing.places, today=self._today(run))
                return self._start(run, offered[index], source)
        index = pick_option(text, [names for names, _ in self._menu_entries()])
        if index is not None:  # a number is a choice, not a figure for the topic to work with
            return self._start(run, self._menu_entries()[index][1], "" if is_number(text) else text)
        self._route(run, text)

    def _route(self, run: _Run, text: str) -> None:
        """Acts on the router's reading: start the category, answer off-topic, or ask which one was meant."""
        conv, texts = run.conversation, self.shared.texts
        reading = self._understand(run, text)
        if reading is None:
            if not run.first_contact:  # a first "你好" just gets the menu after the greeting
                self._say(run, texts.fallback)
            return self._show_menu(run)
        if reading.confidence >= self.routing.threshold:
            if reading.label == OTHER:
                if not run.first_contact:
                    self._say(run, self.content.other.reply)
                return self._show_menu(run)
            if reading.label == VAGUE:
                self._say(run, self.content.other.vague_reply)
                return self._show_menu(run, with_prompt=False)
            later = self._second_complaint(run, text, reading)
            if later is not None:
                self._say(run, texts.also_mentioned, category=self._entry(later).name)
            # Before starting: a first complaint whose facts are all in the message ends at once.
            # The message is kept so the second complaint takes its facts from it too.
            conv.later, conv.offered_text = later, text if later else ""
            return self._start(run, reading.label, text)
        offered = [label for label, _ in reading.candidates if self._entry(label) is not None]
        if not offered:
            self._say(run, texts.fallback)
            return self._show_menu(run)
        conv.state, conv.offered, conv.offered_text = CLARIFY, offered, text
        self._prompt(run)

    def _second_complaint(self, run: _Run, text: str, reading: Any) -> str | None:
        """Names a second complaint in the same message ("货摔坏了，司机态度还很差"): a clause that the
        router confidently reads as another complaint category."""
        if reading.label not in self.content.categories:
            return None
        for clause in self._clauses.split(normalize(text)):
            if len(clause.strip()) < 3:
                continue
            other = self.router.classify(clause)  # type: ignore[union-attr]
            if (other.label in self.content.categories and other.label != reading.label
                    and other.confidence >= self.routing.also_threshold):
                return other.label
        return None

    def _change_topic(self, run: _Run, text: str, answered: bool = False) -> bool:
        """Leaves the current category for another when the message clearly asks for it.

        An answer that fits the question (answered) changes the topic only when it says so (算了，我要问运费)."""
        conv = run.conversation
        said_so = any(word in normalize(text) for word in self.routing.change_words)
        if answered and not said_so:
            return False
        reading = self._understand(run, text)
        if reading is None or reading.confidence < self.routing.threshold:
            return False
        if reading.label == conv.category or self._entry(reading.label) is None:
            return False
        if not said_so and reading.confidence < self.routing.switch_threshold:
            return False
        run.turn.events.append(Event("topic_changed", {"from": conv.category, "to": reading.label}))
        self._leave(run)
        self._say(run, self.shared.texts.topic_changed, category=self._entry(reading.label).name)
        self._start(run, reading.label, text)
        return True

    def _understand(self, run: _Run, text: str) -> Any:
        if self.router is None:
            return None
        if run.understood is None:
            run.understood = self.router.classify(text)
        return run.understood

    def _prefill(self, run: _Run) -> None:
        """Takes the facts a category needs from what the customer already wrote (a waybill, a phone)."""
        conv = run.conversation
        for fact_id, fact in self._category(conv).facts.items():
            fact_type = self.shared.fact_types[fact.type]
            if fact_id in conv.facts or fact_type.entity is None:
                continue
            for found in getattr(run.entities, fact_type.entity):
                value = check_fact(found, fact_type, fact.options)
                if value is not None:
                    conv.facts[fact_id] = value
                    break

    def _on_choice(self, run: _Run, value: str) -> None:
        """A pressed option counts only if it belongs to the question being asked now."""
        key, _, index_text = value.rpartition(":")
        options = self._current_options(run.conversation)
        if key != self._question_key(run.conversation) or not index_text.isdigit() or int(index_text) >= len(options):
            self._say(run, self.shared.texts.stale_choice)
            return self._prompt(run)
        if run.conversation.state == REASON:  # a menu button pressed: a choice, not the reason for a low rating
            run.conversation.state = MENU
        self._on_text(run, options[int(index_text)].label)

    def _command(self, text: str | None) -> str | None:
        return self._commands.get(normalize(text or "").casefold())

    def _global_move(self, run: _Run, move: str) -> None:
        conv = run.conversation
        texts = self.shared.texts
        if move == "help":
            self._say(run, texts.help)
            return self._prompt(run)
        if move == "hello":  # a returning customer's "你好": greet, and ask again what was being asked
            self._say(run, texts.greeting)
            return self._prompt(run)
        if move == "status":
            self._say(run, texts.status_ask)
            return self._prompt(run)
        if move == "human":
            run.turn.events.append(Event("human_requested", {"category": conv.category, "case": conv.case_number}))
            self._say(run, texts.human)
            return self._prompt(run)
        if move == "bye":
            if conv.category is not None:
                run.turn.events.append(Event("conversation_cancelled", {"category": conv.category, "state": conv.state}))
            self._leave(run)
            return self._say(run, texts.goodbye)
        if move == "cancel" and conv.category is not None:
            run.turn.events.append(Event("conversation_cancelled", {"category": conv.category, "state": conv.state}))
            self._say(run, texts.cancelled)
        self._leave(run)
        self._show_menu(run)

    # -- moving through a category -----------------------------------------------------------

    def _start(self, run: _Run, category_id: str, text: str = "", keep_facts: bool = False) -> None:
        conv = run.conversation
        if category_id in self.content.policies.topics:
            conv.category, conv.state, conv.facts = category_id, TOPIC, {}
            reply = self.topics.open(category_id, text, conv.facts, self._today(run))
            for line in reply.texts:
                self._say_plain(run, line)
            return self._prompt(run)
        conv.category, conv.state = category_id, START
        if not keep_facts:
            conv.facts = {}
            conv.case_number = None
        self._prefill(run)
        self._trigger(run, "begin")

    def _topic_text(self, run: _Run, text: str) -> None:
        conv = run.conversation
        reply = self.topics.take(conv.category, text, conv.facts, self._today(run))  # type: ignore[arg-type]
        if not reply.understood:
            if pick_option(text, [[self.shared.back_label]]) is not None:  # "1": the one option shown
                return self._global_move(run, "menu")
            if self._change_topic(run, text):
                return
            self._say(run, self.shared.texts.topic_not_understood)
        for line in reply.texts:
            self._say_plain(run, line)
        self._prompt(run)

    def _today(self, run: _Run):
        return run.ledger.now.astimezone(self.zone).date()

    def _trigger(self, run: _Run, trigger: str) -> None:
        machine = self.machines[run.conversation.category]  # type: ignore[index]
        machine.events[trigger].trigger(run)
        self._settle(run)

    def _settle(self, run: _Run) -> None:
        """Moves on until the conversation waits for the customer, ends or changes category."""
        for _ in range(MAX_MOVES):
            conv = run.conversation
            state = self._state(conv)
            if state.end:
                later, source = conv.later, conv.offered_text
                self._leave(run)
                if later is not None:  # the second complaint of the first message
                    conv.state, conv.offered, conv.offered_text = CLARIFY, [later], source
                    return self._say(run, self.shared.texts.also_now, options=self._current_options(conv),
                                     category=self._entry(later).name)
                self._say(run, self.shared.texts.anything_else)
                return self._show_menu(run, with_prompt=False)
            if state.switch_to:
                run.turn.events.append(Event("handed_over", {"from": conv.category, "to": state.switch_to}))
                self._start(run, state.switch_to, keep_facts=True)
                return
            if state.options or self._pending_fact(conv) is not None:
                return self._prompt(run)
            self.machines[conv.category].events["next"].trigger(run)  # type: ignore[index]
        raise RuntimeError(f"conversation did not settle after {MAX_MOVES} moves")

    def _entered(self, event) -> None:
        """Records what a state says and does on entry."""
        run: _Run = event.model
        category = self._category(run.conversation)
        state = category.flow.states[event.state.name]
        for point in state.say:
            self._say(run, category.answer_points[point])
        if state.open_case:
            self._open_case(run, category)
        if state.end:
            run.turn.events.append(Event("conversation_closed", {"category": category.id, "case": run.conversation.case_number}))
            self._say(run, category.closing)

    def _open_case(self, run: _Run, category: Category) -> None:
        conv = run.conversation
        step = category.handling[0]
        deadline = run.ledger.now + timedelta(hours=step.deadline_hours)
        conv.case_number = run.ledger.number_case(category.id)
        run.turn.events.append(Event("case_opened", {
            "number": conv.case_number, "category": category.id, "facts": dict(conv.facts),
            "step": 0, "role": step.role, "deadline": deadline,
        }))
        self._say(run, self.shared.texts.case_opened, step={
            "role": self.shared.roles[step.role].name,
            "action": render(step.action.text, self._values(run)),
            "deadline": self.local_time(deadline),
        })

    def _case_progress(self, run: _Run, number: str) -> None:
        """Tells a customer where their case stands, then asks again what was being asked."""
        case = run.ledger.find_case(number)
        texts = self.shared.texts
        if case is None or not case.mine:
            # Case numbers are sequential; another customer's case is not shown, nor confirmed to exist.
            self._say(run, texts.status_not_found, case={"number": number})
        else:
            category = self.content.categories.get(case.category)
            self._say(run, texts.status, case={
                "number": case.number, "status": self.shared.case_statuses.get(case.status, case.status),
                "category": category.name if category else case.category, "open": case.status == "open",
            }, step={
                "number": case.step + 1, "role": self.shared.roles[case.role].name if case.role in self.shared.roles else case.role,
                "deadline": self.local_time(case.deadline),
            })
        self._prompt(run)

    def local_time(self, moment: datetime) -> str:
        """A moment as customers and staff read it: local time, e.g. 11月27日 18:00."""
        return moment.astimezone(self.zone).strftime("%m月%d日 %H:%M")

    def _take_fact(self, run: _Run, fact_id: str, text: str) -> None:
        conv = run.conversation
        fact = self._category(conv).facts[fact_id]
        fact_type = self.shared.fact_types[fact.type]
        value = check_fact(text, fact_type, fact.options)
        if value is None and fact_type.entity is not None:  # "运单号是 SH123456，麻烦快点"
            value = next(filter(None, (check_fact(v, fact_type, None) for v in getattr(run.entities, fact_type.entity))), None)
        if self._change_topic(run, text, answered=value is not None):
            return
        if value is None:
            self._prefill(run)  # not an answer, but it may name a fact asked later (a waybill, a phone)
            self._say(run, fact_type.invalid)
            return self._prompt(run)
        conv.facts[fact_id] = value
        self._prefill(run)
        self._settle(run)

    def _leave(self, run: _Run) -> None:
        conv = run.conversation
        conv.category, conv.state, conv.later, conv.offered, conv.offered_text = None, MENU, None, [], ""

    # -- what is being asked -----------------------------------------------------------------

    def _prompt(self, run: _Run) -> None:
        """Asks again whatever the conversation is waiting for."""
        conv = run.conversation
        if conv.state == CLARIFY:
            return self._say(run, self.shared.texts.which_one, options=self._current_options(conv))
        if conv.category is None:
            return self._show_menu(run)
        if conv.state == TOPIC:
            asked = self.topics.prompt(conv.category, conv.facts)
            if asked is None:
                return self._say(run, self.shared.texts.topic_more, options=self._current_options(conv))
            return self._say_plain(run, asked, options=self._current_options(conv))
        pending = self._pending_fact(conv)
        text = self._category(conv).facts[pending].prompt if pending else self._state(conv).ask
        assert text is not None
        self._say(run, text, options=self._current_options(conv))

    def _show_menu(self, run: _Run, with_prompt: bool = True) -> None:
        options = self._current_options(run.conversation)
        if with_prompt or not run.turn.replies:
            self._say(run, self.shared.texts.menu_prompt, options=options)
        else:  # attach the menu to the reply just given
            last = run.turn.replies.pop()
            run.turn.replies.append(Reply(last.text, tuple(options)))

    def _current_options(self, conv: Conversation) -> list[Option]:
        key = self._question_key(conv)
        if conv.state == CLARIFY:
            labels = [self._names(label)[0] for label in conv.offered] + [self.shared.back_label]
        elif conv.category is None:
            labels = [names[0] for names, _ in self._menu_entries()]
        elif conv.state == TOPIC:
            labels = [self.shared.back_label]
        else:
            pending = self._pending_fact(conv)
            if pending is not None:
                labels = list(self._category(conv).facts[pending].options or [])
            else:
                labels = [o.label for o in self._state(conv).options]
        return [Option(label, f"{key}:{i}") for i, label in enumerate(labels)]

    def _question_key(self, conv: Conversation) -> str:
        """Names the question now asked, short enough for Telegram's 64-byte button data."""
        if conv.category is None:
            # menu, or clarify; waiting for a low rating's reason, the buttons shown are the menu's
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
        if conv.category is None or conv.state == TOPIC:
            return None
        return next((f for f in self._state(conv).collect if f not in conv.facts), None)

    def _category(self, conv: Conversation) -> Category:
        return self.content.categories[conv.category]  # type: ignore[index]

    def _state(self, conv: Conversation) -> State:
        return self._category(conv).flow.states[conv.state]

    # -- text ---------------------------------------------------------------------------------

    def _values(self, run: _Run, **extra: Any) -> dict[str, Any]:
        conv = run.conversation
        entry = self._entry(conv.category) if conv.category else None
        values = template_values(conv.salutation or self.shared.salutation_default, conv.facts, conv.case_number,
                                 category=entry.name if entry else "")
        values.update(extra)
        return values

    def _say(self, run: _Run, text: Text, options: list[Option] | tuple = (), **extra: Any) -> None:
        self._say_plain(run, render(text.text, self._values(run, **extra)), options)

    def _say_plain(self, run: _Run, text: str, options: list[Option] | tuple = ()) -> None:
        run.turn.replies.append(Reply(text, tuple(options)))
