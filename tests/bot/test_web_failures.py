"""A failed Telegram update retried from the failures page is handled again by the running bot, through
the same path as any update (the real PTB stack against the Bot API emulator, as in test_telegram)."""

from __future__ import annotations

from sqlmodel import select

from bot.store import Inbox, InboxRow
from telegram_harness import wait_until
from test_telegram import CUSTOMER_ID, shared_engine, world  # noqa: F401  (fixtures)


def test_a_failed_update_retried_is_handled_again_by_the_running_bot(world):
    service = world.service()
    handle, broken = service.handle, [True]

    def flaky(channel, user_key, inbound, update_id=None):
        if broken[0] and inbound.text == "货物滞留":
            raise RuntimeError("the engine broke")
        return handle(channel, user_key, inbound, update_id)

    service.handle = flaky  # the service fails once, not the adapter
    world.start(service, telegram_deadline_seconds=0.2)
    customer = world.user(CUSTOMER_ID, "王")
    customer.say("货物滞留")
    customer.expect("系统暂时出了点问题")
    with world.session() as session:
        failed = session.exec(select(InboxRow).where(InboxRow.status == "failed")).one()
    assert failed.error == "RuntimeError: the engine broke"

    broken[0] = False
    assert Inbox(service.store.db).retry(failed.update_id, "lily")
    customer.expect("请提供您的运单号")  # the same update, handled this time
    with world.session() as session:
        wait_until(lambda: session.get(InboxRow, failed.update_id, populate_existing=True).status == "done",
                   "the retried update marked done")
