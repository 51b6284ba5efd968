"""The one path every channel takes: load the conversation, run the engine, store the turn, reply."""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from sqlalchemy.exc import IntegrityError

from bot.config import Settings
from bot.storage.database import open_database
from bot.storage.store import Store, TurnTx
from dialogs.content import Content, load_content
from dialogs.conversation import Inbound, Reply, Turn
from dialogs.engine import Engine

log = logging.getLogger("kefu.router")
TURN_ATTEMPTS = 3  # two processes may race for the same new case number; the loser runs its turn again


class BackgroundRouter:
    """Trains the intent router on another thread: kefu answers menu choices at once, and only
    free text waits for the training (about 2 s, most of it importing scikit-learn).

    Training starts at warm() (long-running channels call it at start-up) or at the first
    free-text message, so a short scripted `kefu chat` that never needs it does not pay for it."""

    def __init__(self, content: Content, cache_dir: Path | None = None):
        self._examples = content.examples()
        # One trained model per version of the content: a start with it cached answers at once.
        self._cache = cache_dir / f"router-{content.version}.npz" if cache_dir else None
        self._ready = threading.Event()
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None
        self._router: Any = None
        self._error: BaseException | None = None
        self._load_cached()

    def _load_cached(self) -> None:
        if self._cache is None or not self._cache.exists():
            return
        try:
            import numpy as np

            from dialogs.intents import Router

            with np.load(self._cache, allow_pickle=False) as arrays:
                self._router = Router.from_arrays(arrays)
        except (OSError, ValueError, KeyError) as exc:  # unreadable or of another version: trained again
            log.info("router cache %s not used: %s", self._cache.name, exc)
            return
        self._thread = threading.current_thread()  # nothing to train
        self._ready.set()

    def _save(self, router: Any) -> None:
        """Keeps the trained model for the next start (written whole, then renamed: never half a file)."""
        if self._cache is None:
            return
        try:
            import numpy as np

            self._cache.parent.mkdir(parents=True, exist_ok=True)
            partial = self._cache.with_name(f".{self._cache.name}.{os.getpid()}.npz")
            np.savez(partial, **router.to_arrays())
            os.replace(partial, self._cache)
        except OSError as exc:  # a read-only home: kefu works, it only trains at each start
            log.info("router cache not written: %s", exc)
    def warm(self) -> None:
        """Starts training, if it has not started yet."""
        with self._started:
            if self._thread is None:
                # A daemon thread, so leaving kefu does not wait for it.
                self._thread = threading.Thread(target=self._train, name="kefu-router", daemon=True)
                self._thread.start()

    def _train(self) -> None:
        try:
            from dialogs.intents import Router

            self._router = Router.train(self._examples)
            self._save(self._router)
        except BaseException as exc:  # surfaced on the first classify
            self._error = exc
        finally:
            self._ready.set()

    @property
    def ready(self) -> bool:
        """The model is loaded or trained (or failed to): wait() would return at once."""
        return self._ready.is_set()

    def wait(self) -> None:
        """Returns when the model is ready (loaded or trained), starting the training if it has not started."""
        self.warm()
        self._ready.wait()

    def classify(self, text: str) -> Any:
        self.wait()
        if self._error is not None:
            raise RuntimeError("the intent router failed to train") from self._error
        return self._router.classify(text)


@dataclass
class Service:
    content: Content
    engine: Engine
    store: Store
    router: BackgroundRouter

    @classmethod
    def from_settings(cls, settings: Settings | None = None, create: bool = True) -> "Service":
        """Loads and checks the content (ContentError if invalid) and opens the database (DatabaseError
        if it cannot; create=False: a missing SQLite file is an error, not a new empty database)."""
        settings = settings or Settings()
        content = load_content(settings.content_dir, settings.cache_dir)
        router = BackgroundRouter(content, settings.cache_dir)
        engine = Engine(content, router)
        return cls(content, engine, Store(open_database(settings, create), content.version, engine.zone), router)

    def receive(self, channel: str, user_key: str, inbound: Inbound) -> list[Reply]:
        """Handles one customer message; the turn is stored before the replies are returned."""
        return self.handle(channel, user_key, inbound).replies

    def handle(self, channel: str, user_key: str, inbound: Inbound, update_id: int | None = None,
               within: Callable[[TurnTx, Turn], None] | None = None) -> Turn:
        """Handles one customer message and returns the whole turn (replies and events, such as a
        case opened), stored before it is returned. With the channel's update id, the turn runs once
        even when the update is replayed: an update already taken by a committed turn gets an empty turn.
        `within` does what else the turn brings in the same transaction (a guided complaint claims its case)."""
        inbound = self.store.storable(inbound)
        if inbound.text and not inbound.text.strip().isdigit():
            self.router.wait()  # free text may need the model: train it before the turn takes the write lock
        # Inside a unit, the turn runs in a savepoint, so that a clash of case numbers undoes only the turn and
        # it can run again. Not on SQLite: there the unit holds the write lock from BEGIN IMMEDIATE, so no
        # other writer can take a number meanwhile, and the savepoint would be two statements for nothing.
        savepoint = self.store.db.dialect.name != "sqlite"
        for attempt in range(TURN_ATTEMPTS):
            try:
                with self.store.turn(channel, user_key, savepoint=savepoint) as tx:  # retried on IntegrityError
                    if update_id is not None and not tx.take_update(update_id):
                        return Turn()
                    turn = self.engine.handle(tx.conversation, inbound, tx)
                    tx.record(inbound, turn)
                    if within is not None:
                        within(tx, turn)
                return turn
            except IntegrityError:
                if attempt == TURN_ATTEMPTS - 1:
                    raise
        raise AssertionError("unreachable")

    def record(self, channel: str, user_key: str, inbound: Inbound | None, turn: Turn) -> None:
        """Stores a turn the engine took no part in (a rating, a photo, a message to staff, a failed
        send): the transcript keeps every message in and out."""
        with self.store.turn(channel, user_key) as tx:
            tx.record(inbound, turn)
