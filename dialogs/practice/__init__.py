"""Training: scenarios a trainee practises on, and the scoring of their replies against the manual."""

from dialogs.practice.content import Training, load_training, topic_texts
from dialogs.practice.scoring import Check, Score, score_replies
from dialogs.practice.session import Session

__all__ = ["Check", "Score", "Session", "Training", "load_training", "topic_texts", "score_replies"]
