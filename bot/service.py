"""The one path every channel takes: load the conversation, run the engine, store the turn, reply."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.store import Store, connect
from dialogs.content import Content, load_content
from dialogs.conversation import Inbound, Reply
from dialogs.engine import Engine

TURN_ATTEMPTS = 3  # two processes may race for the same new case number; the loser runs its turn again


@dataclass
class Service:
    content: Content
    engine: Engine
    store: Store

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> "Service":
        """Loads and checks the content (ContentError if invalid) and opens the database."""
        settings = settings or Settings()
        content = load_content(settings.content_dir)
        engine = Engine(content)
        return cls(content, engine, Store(connect(settings.database_url), content.version, engine.zone))

    def receive(self, channel: str, user_key: str, inbound: Inbound) -> list[Reply]:
        """Handles one customer message; the turn is stored before the replies are returned."""
        for attempt in range(TURN_ATTEMPTS):
            try:
                with self.store.turn(channel, user_key) as tx:
                    turn = self.engine.handle(tx.conversation, inbound, tx)
                    tx.record(inbound, turn)
                return turn.replies
            except IntegrityError:
                if attempt == TURN_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")
