"""A training session: kefu plays a scenario's customer turn by turn and scores the trainee after each reply."""

from __future__ import annotations

from dataclasses import dataclass, field

from dialogs.practice.content import Scenario, Training
from dialogs.practice.scoring import Score, score_replies


@dataclass
class Session:
    training: Training
    category: str
    number: int  # 1-based, as `kefu train --scenario` counts
    replies: list[str] = field(default_factory=list)
    customer: list[str] = field(default_factory=list)  # the customer's lines so far
    scores: list[Score] = field(default_factory=list)  # after each reply
    contact_given: bool = False

    def __post_init__(self) -> None:
        self.customer.append(self.scenario.opening.text)

    @property
    def scenario(self) -> Scenario:
        return self.training.scenario(self.category, self.number)

    @property
    def turns(self) -> int:
        """How many replies the trainee gives: one to the opening, one to each follow-up."""
        return 1 + len(self.scenario.follow_ups)

    @property
    def finished(self) -> bool:
        return len(self.replies) >= self.turns

    @property
    def score(self) -> Score:
        return self.scores[-1] if self.scores else Score(0)

    def answer(self, reply: str) -> tuple[Score, str | None]:
        """Takes the trainee's reply; returns the session's score so far and the customer's next line
        (None when the session is over)."""
        if self.finished:
            raise ValueError("the session is over")
        self.replies.append(reply)
        score = score_replies(self.training, self.category, self.scenario, self.replies, self.customer)
        self.scores.append(score)
        if self.finished:
            return score, None
        line = self._react(score) + self.scenario.follow_ups[len(self.replies) - 1].text
        self.customer.append(line)
        return score, line

    def _react(self, score: Score) -> str:
        """What the customer says first, reacting to the reply just given."""
        latest = score_replies(self.training, self.category, self.scenario, self.replies[-1:], self.customer[-1:],
                               earlier=self.replies[:-1])
        if latest.forbidden:
            return self.scenario.objects.text
        asked = any(c.id == "ask_contact" and c.passed for c in latest.of("move"))
        if asked and not self.contact_given:
            self.contact_given = True
            return self.scenario.contact.text
        promised = any(c.id == "feedback" and c.passed for c in score.of("move"))
        if not promised and "feedback" in self.training.scoring.categories[self.category].moves:
            return self.scenario.angrier.text
        return ""
