"""Several workers over one database (kefu telegram --receive-only, kefu telegram --worker), killed with
SIGKILL at random while they handle kept updates: nothing is lost, no update is handled twice, each
customer's messages are handled in order, and every reply reaches Telegram (the emulator)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter

from sqlmodel import select

from bot.config import Settings
from bot.service import Service
from bot.storage.inbox import Inbox
from bot.storage.tables import ConversationRow, InboxRow, MessageRow, OutboxRow
from telegram_harness import env_without_telegram, wait_until

CUSTOMERS = 24
FIRST_CUSTOMER = 70_000


def script(n: int) -> list[str]:
    """What one customer writes: a stranded-goods complaint to its case, then a question about it."""
    return ["/start", "货放你们那三天了还不发", f"SH2026{n:05d}", f"1380013{n:04d}", "谢谢", "/status", "好的"]


def update(update_id: int, user: int, text: str) -> dict:
    message = {"message_id": update_id, "date": int(time.time()), "text": text,
               "from": {"id": user, "is_bot": False, "first_name": "客户"},
               "chat": {"id": user, "type": "private", "first_name": "客户"}}
    if text.startswith("/"):
        message["entities"] = [{"offset": 0, "length": len(text.split()[0]), "type": "bot_command"}]
    return {"update_id": update_id, "message": message}


def test_workers_killed_at_random_lose_nothing_and_handle_nothing_twice(emulator, database_url, tmp_path):
    _, proxy = emulator
    token = f"{800000 + os.getpid() % 1000}:WORKERS-{time.time_ns() % 10**6}"
    service = Service.from_settings(Settings(database_url=database_url))  # makes the database
    inbox = Inbox(service.store.db)
    users = [FIRST_CUSTOMER + i for i in range(CUSTOMERS)]
    said = {user: script(i) for i, user in enumerate(users)}
    update_id = 1
    for step in range(len(script(0))):  # customers' messages interleaved, as they arrive
        for user in users:
            inbox.add(update_id, update(update_id, user, said[user][step]), str(user))
            update_id += 1

    config = tmp_path / "kefu.toml"
    config.write_text("")
    env = {**env_without_telegram(), "TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_BASE_URL": proxy.url,
           "KEFU_DATABASE_URL": database_url, "KEFU_CONFIG": str(config), "KEFU_TELEGRAM_BURST": "1000",
           "KEFU_TELEGRAM_RATE": "1000", "XDG_CACHE_HOME": str(tmp_path / "cache")}

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-m", "bot", "telegram", *args], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def statuses() -> Counter:
        with service.store.reading() as session:
            return Counter(row.status for row in session.exec(select(InboxRow)))

    receiver = start("--receive-only")  # sends what a killed worker left
    workers = [start("--worker"), start("--worker")]
    rng, kills = random.Random(13), 0
    try:
        while statuses().get("done", 0) < update_id - 1 and kills < 8:
            time.sleep(rng.uniform(1.0, 3.0))
            victim = rng.randrange(len(workers))
            workers[victim].send_signal(signal.SIGKILL)
            workers[victim].wait(timeout=30)
            workers[victim] = start("--worker")
            kills += 1
        wait_until(lambda: statuses() == Counter({"done": update_id - 1}), "every update to be handled", timeout=240)
        wait_until(lambda: _all_sent(service), "every reply to be sent", timeout=60)
    finally:
        for process in [*workers, receiver]:
            process.send_signal(signal.SIGTERM)
        errors = [process.communicate(timeout=60)[1] for process in [*workers, receiver]]
    assert kills >= 3, "the workers finished before they could be killed: more customers are needed"
    # 0, or -SIGTERM for a worker restarted so late that it had not yet taken its signals (it held nothing)
    assert all(process.returncode in (0, -signal.SIGTERM) for process in [*workers, receiver]), errors

    with service.store.reading() as session:
        for user in users:  # each message handled once, in the order the customer sent them
            conv = session.exec(select(ConversationRow).where(ConversationRow.user_key == str(user))).one()
            inbound = [m.text for m in session.exec(select(MessageRow).where(
                MessageRow.conversation_id == conv.id, MessageRow.direction == "in").order_by(MessageRow.id))]
            assert inbound == said[user]
            assert conv.case_number is not None
        queued = Counter((row.chat_id, row.payload["text"]) for row in session.exec(select(OutboxRow)))
    # A request cut off by a kill reaches the emulator without its fields: Telegram would refuse it, nothing arrives.
    delivered = Counter((int(call["chat_id"]), call["text"]) for call in proxy.calls(token, "sendMessage")
                        if "chat_id" in call and "text" in call)
    assert not queued - delivered  # every reply arrived
    doubled = delivered - queued  # a reply sent again: a worker killed after sending it but before marking it sent
    assert set(doubled) <= set(queued)
    assert sum(doubled.values()) <= 3 * kills, doubled
    print(f"\n{update_id - 1} updates, {kills} kills, {sum(queued.values())} replies, "
          f"{sum(doubled.values())} sent twice")


def _all_sent(service: Service) -> bool:
    with service.store.reading() as session:
        return session.exec(select(OutboxRow).where(OutboxRow.status == "pending")).first() is None
