"""Fee and policy questions: the manual's answers, and exact figures worked out from the customer's numbers."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from dialogs.entities import Entities, extract
from dialogs.folding import fold
from dialogs.policies import (Policies, UnknownCity, cod_fee, insurance_fee, known_places, storage_fee, topic_answers,
                              topic_text)

# The storage quote needs three figures; they may come in one message or over several.
STORAGE_NEEDS = ("freight", "days", "city")
NTH_DAY = re.compile(r"第\s*(\d{1,3})\s*天")  # "第5天": the count customers give for days since the notice
BARE_COUNT = re.compile(r"\d{1,3}")  # "5" alone, answering "how many days?" (entities take no lone small number as money)
FREIGHT_WORD = "运费"


@dataclass
class TopicReply:
    texts: list[str] = field(default_factory=list)
    understood: bool = True  # False: the message gave nothing this topic can use


class TopicDesk:
    """Answers one topic's questions; keeps the figures a storage quote still needs in `facts`."""

    def __init__(self, policies: Policies):
        self.policies = policies
        self.places = known_places(policies)

    def open(self, topic_id: str, text: str, facts: dict[str, str], today: date) -> TopicReply:
        """Answers the first message: a quote when it carries the figures, else the topic's answers."""
        reply = self.take(topic_id, text, facts, today)
        if reply.understood:
            return reply
        return TopicReply(list(topic_answers(topic_id, self.policies).values()))

    def take(self, topic_id: str, text: str, facts: dict[str, str], today: date) -> TopicReply:
        """Works out a figure from a message within the topic, or says it could not."""
        found = extract(text, self.places, today=today)
        amounts = [a for a in found.amounts if a > 0]  # "0元" quotes nothing (and the calculators refuse it)
        if topic_id == "cod" and amounts:
            return TopicReply([cod_fee(amounts[0], self.policies).explanation])
        if topic_id == "insurance" and amounts:
            quote = insurance_fee(amounts[0], self.policies)
            return TopicReply([quote.explanation, *quote.notes])
        if topic_id == "storage":
            return self._storage(text, found, facts, today)
        return TopicReply(understood=False)

    def prompt(self, topic_id: str, facts: dict[str, str]) -> str | None:
        """Returns what to ask next in the topic, if anything."""
        topic = self.policies.topics[topic_id]
        if topic_id == "storage" and any(facts.get(need) for need in STORAGE_NEEDS):
            missing = next(need for need in STORAGE_NEEDS if not facts.get(need))
            return topic_text(topic_id, getattr(self.policies.storage.prompts, missing), self.policies)
        return topic_text(topic_id, topic.ask, self.policies) if topic.ask else None

    def _storage(self, text: str, found: Entities, facts: dict[str, str], today: date) -> TopicReply:
        before = dict(facts)
        days = _days(text, found, today)
        if days is None and facts.get("freight") and not facts.get("days") and BARE_COUNT.fullmatch(fold(text).strip()):
            days = int(fold(text).strip())
        amounts = [a for a in found.amounts if days is None or a != days]
        if days is not None:
            facts["days"] = str(days)
        if found.cities:
            facts["city"] = found.cities[0]
        if amounts:
            pending = next((need for need in STORAGE_NEEDS if not facts.get(need)), None)
            bare_count = amounts[0] == amounts[0].to_integral_value() and FREIGHT_WORD not in text
            if pending == "days" and facts.get("freight") and bare_count:
                facts["days"] = str(int(amounts[0]))  # a bare "5" answers "how many days?"
            else:
                facts["freight"] = str(amounts[0])
        if facts == before:
            if facts.get("freight") and facts.get("days") and text.strip():
                facts["city"] = text.strip()  # asked for the city: take the answer, and list the known ones if it is not
            else:
                return TopicReply(understood=False)
        if not all(facts.get(need) for need in STORAGE_NEEDS):
            return TopicReply([])  # the engine asks for the next missing figure
        result = storage_fee(Decimal(facts["freight"]), int(facts["days"]), facts["city"], self.policies)
        if isinstance(result, UnknownCity):
            del facts["city"]
            return TopicReply([result.message])
        facts.clear()  # ready for another calculation
        return TopicReply([result.explanation])


def _days(text: str, found: Entities, today: date) -> int | None:
    """Days since the pickup notice, from "5天", "第5天" or the notice's date ("11月20号")."""
    nth = NTH_DAY.search(text)
    if nth:
        return int(nth.group(1))
    for duration in found.durations:
        if duration.unit in ("day", "week", "month"):
            return int(duration.days)
    for when in found.dates:
        if when <= today:
            return (today - when).days
    return None
