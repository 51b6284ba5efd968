"""A dead-lettered Telegram update retried from the failures page is handled again by the running bot,
through the same path as any update (the real PTB stack against the Bot API emulator, as in test_telegram)."""

from __future__ import annotations

import re

from sqlmodel import select
from starlette.testclient import TestClient

from bot.storage.tables import InboxRow
from bot.web import auth
from bot.web.app import create_app
from telegram_harness import wait_until
from test_telegram import CUSTOMER_ID, shared_engine, world  # noqa: F401  (fixtures)


def test_a_dead_update_retried_from_the_page_is_handled_by_the_running_bot(world):
    service = world.service()
    handle, broken = service.handle, [True]

    def flaky(channel, user_key, inbound, update_id=None):
        if broken[0] and inbound.text == "货物滞留":
            raise RuntimeError("the engine broke")
        return handle(channel, user_key, inbound, update_id)

    service.handle = flaky  # the service fails until it is mended, not the adapter
    world.start(service, telegram_attempts=1, telegram_retry_seconds=1)
    customer = world.user(CUSTOMER_ID, "王")
    customer.say("货物滞留")

    def row(*where):  # read in a session of its own each time: a reader holds no lock the bot waits on
        with service.store.reading() as session:
            return session.exec(select(InboxRow).where(*where)).first()

    dead = wait_until(lambda: row(InboxRow.status == "dead"), "a dead update")
    assert dead.error.startswith("RuntimeError: the engine broke")

    broken[0] = False
    auth.add_user(service.store.db, "lily", "supervisor", "lily-password")
    pages = TestClient(create_app(service), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', pages.get("/login").text).group(1)
    pages.post("/login", data={"csrf_token": token, "name": "lily", "password": "lily-password", "next": "/"})
    listed = pages.get("/failures").text
    assert "RuntimeError: the engine broke" in listed
    token = re.search(r'name="csrf_token" value="([^"]+)"', listed).group(1)
    assert pages.post(f"/failures/{dead.update_id}/retry", data={"csrf_token": token}).status_code == 303
    customer.expect("请提供您的运单号")  # the same update, handled this time
    wait_until(lambda: row(InboxRow.update_id == dead.update_id, InboxRow.status == "done"),
               "the retried update marked done")
