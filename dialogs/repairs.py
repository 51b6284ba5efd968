"""What a message wants besides answering the question asked: a person, to stop, to say thanks or
goodbye, to wait, to protest that it was already said (the conversation-repair patterns of Rasa).

Pure code over the phrase lists in shared.yaml (`repairs:`), matched on the folded message. The
engine reads every message this way first, whatever complaint or topic is open, so each pattern
lives here once and no category file repeats it."""

from __future__ import annotations

import re
from dataclasses import dataclass

from dialogs.folding import fold
from dialogs.schema import Repairs

# A person asked for after a verb: 找你们领导, 叫个主管来, 转人工. "人" alone takes the narrow verbs only
# (让人很生气 and 需要人帮忙 ask for nobody).
HOURS_REST = 14  # what a question about the hours may say besides (我不想说单号 就问问你们晚上)
_VERBS = "找|叫|喊|要|转|换|请|接|转给|给我找|给我转|让"
_PERSON_VERBS = "找|叫|喊|转"
_BETWEEN = "(?:一下|个|一个|你们|你们的|那个|来|来个|一位|位)?"
_CLAUSE = re.compile(r"[,.;!?，。；！？\s]+")
_ASKS = re.compile(r"[?？]|我要问|我想问|问一下|帮我|怎么|多少|能不能|可以吗")


LOST_REST = 4  # characters besides the words of being lost ("那你让我" in 那你让我怎么办)
HURRY_REST = 6  # what a hurry may say besides ("你们能不能" in 你们能不能快点啊): more is a detail of its own


@dataclass(frozen=True)
class Wants:
    """What one message asks for besides an answer. The short-message wishes (cancel, bye, thanks,
    wait) are set only when the message says little else."""

    human: bool = False
    cancel: bool = False
    bye: bool = False
    thanks: bool = False  # thanks, or only an acknowledgement (好的, 嗯): either closes what was said
    ack: bool = False  # only an acknowledgement, no thanks
    wait: bool = False
    protest: bool = False
    meta: bool = False
    hours: bool = False
    insult: bool = False
    insult_only: bool = False  # nothing but abuse: apologise and ask again
    upset: bool = False  # sarcasm or a threat (呵呵 你们可真行, 我要去消协投诉): sorry first, like abuse, but a complaint still
    cannot_give: bool = False
    correction: bool = False
    own_status: bool = False
    unanswered: bool = False
    withdraw: bool = False
    hurry: bool = False
    photos: bool = False
    decision: bool | None = None  # to a yes/no question: True yes, False no, None neither (or not short)


class RepairReader:
    """Reads messages for the repair patterns; build once from the shared content."""

    def __init__(self, repairs: Repairs):
        self.lists = {name: _phrases(getattr(repairs, name)) for name in type(repairs).model_fields if name != "fillers"}
        self._fillers = set(fold(repairs.fillers).casefold())
        # The fillers and white space (\s is str.isspace's set), dropped in one pass by _rest
        self._not_words = re.compile("|".join([r"\s"] + [re.escape(c) for c in sorted(self._fillers)]))
        self._sorted: dict[tuple[str, ...], tuple[str, ...]] = {}  # _longest_first's
        after_verb = [p for p in self.lists["human_after_verb"] if p != "人"]
        self._human = re.compile(
            "|".join([_alternation(self.lists["human"])]
                     + [f"(?:{_VERBS}){_BETWEEN}(?:{'|'.join(map(re.escape, after_verb))})" if after_verb else "(?!)"]
                     + [f"(?:{_PERSON_VERBS}){_BETWEEN}人(?![家们工])"]
                     # "我想找一下昨天帮我处理的那个客服": someone who helped before, named by what they did
                     + [f"(?:找|联系)[^，。！？,.!?]{{0,16}}(?:那个|那位)(?:{'|'.join(map(re.escape, after_verb))})"]))
        self._not_human = _alternation(self.lists["not_human"])
        self._patterns = {name: re.compile(_alternation(items)) for name, items in self.lists.items()}
        cannot, subjects = _alternation(self.lists["cannot_give"]), _alternation([s for s in self.lists["subjects"] if len(s) > 1])
        self._cannot_give_subject = re.compile(f"(?:{cannot}).{{0,2}}(?:{subjects})|(?:{subjects}).{{0,3}}(?:{cannot})")

    def read(self, text: str) -> Wants:
        """Returns what the message wants (text: as the customer wrote it, or already folded)."""
        said = fold(text).strip().casefold()
        if not said:
            return Wants()
        found = {name: bool(pattern.search(said)) for name, pattern in self._patterns.items()}
        short = self._says_little_else(said, ("cancel", "thanks", "acknowledge", "bye", "addressing"))
        without_insults = self._rest(said, ("insult",))
        first = _CLAUSE.split(said, maxsplit=1)[0]
        cancels = {p for p in self.lists["cancel"] if p in said}
        return Wants(
            human=bool(self._human.search(re.sub(self._not_human, " ", said) if self.lists["not_human"] else said)),
            # "算了，不投诉了，投了也没用": two ways of dropping it say so as clearly as a short message
            cancel=found["cancel"] and (short or len(cancels) >= 2
                                        or (self._says_little_else(first, ("cancel",)) and not _ASKS.search(said))),
            bye=found["bye"] and self._says_little_else(said, ("bye", "thanks", "acknowledge")),
            thanks=(found["thanks"] or found["acknowledge"]) and short,
            ack=found["acknowledge"] and not found["thanks"] and short,
            wait=found["wait"] and self._says_little_else(said, ("wait", "thanks", "acknowledge", "subjects")),
            protest=found["protest"],
            meta=found["meta"],
            # "就问问你们晚上几点下班", not a story that also asks it (its complaint would be lost)
            hours=found.get("hours", False) and len(self._rest(said, ("hours",))) <= HOURS_REST,
            insult=found["insult"],
            insult_only=found["insult"] and not without_insults,
            upset=found["upset"],
            # "单号不记得了", or "我没有单号，单子在客户那，是从福州发到武汉的": said of what is asked for
            cannot_give=found["cannot_give"] and not found.get("goods_lost") and (len(self._rest(said, ("cannot_give", "subjects"))) <= 6
                                                  or bool(self._cannot_give_subject.search(said))
                                                  or not self._rest(first, ("cannot_give", "subjects"))),
            correction=found["correction"],
            own_status=found["own_status"],
            photos=found.get("photos", False),
            unanswered=found.get("unanswered", False),
            withdraw=found.get("withdraw", False),
            hurry=found.get("hurry", False) and len(self._rest(said, ("hurry",))) <= HURRY_REST,
            decision=self._decision(said),
        )

    def cannot_give(self, text: str, called: list[str]) -> bool:
        """Whether the message says the customer cannot give the thing called so ("单号我找不到了",
        "手机号不想给", "冇单号喔"): a cannot-give phrase right next to one of its names, no goods lost."""
        said = fold(text).casefold()
        if not called or self._patterns["goods_lost"].search(said):
            return False
        cannot = self._patterns["cannot_give"]
        return any(cannot.search(said, max(0, m.start() - 4), m.end() + 5)  # 4 before: "不方便留电话"
                   for m in re.finditer(_alternation([fold(c).casefold() for c in called]), said))

    def _decision(self, said: str) -> bool | None:
        """Yes or no, when the message is just that: the longest phrase found decides (不是 over 是,
        不办了 over 不)."""
        lists = ("affirm", "deny", "cancel", "thanks", "acknowledge", "bye")
        # "嗯，先不弄了，我自己去网点问": the answer comes first, the rest is an explanation
        span = said if self._says_little_else(said, lists) else _CLAUSE.split(said, maxsplit=1)[0]
        if not self._says_little_else(span, lists):
            return None
        best: tuple[int, bool] | None = None
        for name, value in (("affirm", True), ("cancel", True), ("deny", False)):
            for phrase in self.lists[name]:
                if phrase in span and (best is None or len(phrase) > best[0]):
                    best = (len(phrase), value)
        return None if best is None else best[1]

    def _says_little_else(self, said: str, lists: tuple[str, ...]) -> bool:
        return len(self._rest(said, lists)) <= 1

    def _rest(self, said: str, lists: tuple[str, ...]) -> str:
        """The message without the phrases of these lists and without filler characters."""
        for phrase in self._longest_first(lists):
            said = said.replace(phrase, " ")
        return self._not_words.sub("", said)

    def _longest_first(self, lists: tuple[str, ...]) -> tuple[str, ...]:
        """The phrases of these lists, longest first: sorted once per set of lists, not at each of the
        four or five looks read() takes at every message."""
        phrases = self._sorted.get(lists)
        if phrases is None:
            phrases = self._sorted[lists] = tuple(sorted((p for name in lists for p in self.lists[name]),
                                                         key=len, reverse=True))
        return phrases

    def without_requests(self, text: str) -> str:
        """The message without its requests for a person and without abuse (what is left may be a complaint)."""
        said = fold(text).casefold()
        said = self._human.sub(" ", said)
        return self._patterns["insult"].sub(" ", said)

    def has(self, name: str, text: str) -> bool:
        """Tells whether the message contains a phrase of one of the lists (e.g. 'correction')."""
        return bool(self._patterns[name].search(fold(text).casefold()))

    def rest(self, text: str, name: str) -> str:
        """The message without the phrases of one list and without fillers ("哦 又是机器人 行吧 我货到了为什么不送"
        without the words about the bot: what else it says)."""
        return self._rest(fold(text).casefold(), (name,))

    def only(self, name: str, text: str) -> bool:
        """Whether the message says nothing but phrases of one list and fillers ("那个，我想问下…": lead_in only)."""
        return self.has(name, text) and not self.rest(text, name)

    def lost(self, text: str) -> bool:
        """Lost and saying little else ("俺不懂", "那你让我怎么办"): the way out is owed, not the question again."""
        said = fold(text).casefold()
        return bool(self._patterns["confused"].search(said)) and len(self._rest(said, ("confused",))) <= LOST_REST


def _phrases(items: list[str]) -> list[str]:
    return sorted({fold(item).strip().casefold() for item in items if item.strip()}, key=len, reverse=True)


def _alternation(phrases: list[str]) -> str:
    """One pattern for a phrase list; numbers and Latin words must stand alone (12315 is not part of a
    waybill, 'bot' not part of 'robotic')."""
    if not phrases:
        return "(?!)"
    parts = []
    for phrase in phrases:
        body = re.escape(phrase)
        if phrase.isdigit():
            body = rf"(?<!\d){body}(?!\d)"
        elif phrase.isascii() and phrase[0].isalpha():
            body = rf"(?<![a-z]){body}(?![a-z])"
        parts.append(body)
    return "|".join(parts)
