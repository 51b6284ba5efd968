"""Units, the outbox and the inbox, driven without Telegram (TelegramBot with its calls recorded): each test was
a finding of a second review of the one-transaction design, failing before its fix."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta

from sqlalchemy.exc import OperationalError
from sqlmodel import select
from telegram import Update

from bot.config import Settings
from bot.service import Service
from bot.storage.engine import UNIT
from bot.storage.outbox import queue
from bot.storage.tables import InboxRow, OutboxRow, StaffModeRow, utcnow
from bot.telegram import TelegramBot
from bot.telegram.common import InboxQueue


def make_bot(url: str, role: str = "all", **extra) -> tuple[TelegramBot, list[OutboxRow]]:
    settings = Settings(database_url=url, telegram_bot_token="123:TEST", telegram_api_base_url="http://127.0.0.1:9",
                        **extra)
    bot = TelegramBot(settings, Service.from_settings(settings), role=role)
    calls: list[OutboxRow] = []

    async def fake_call(row: OutboxRow):
        calls.append(row)
        return None

    bot._call = fake_call
    return bot, calls


def message_update(update_id: int, user: int, text: str = "hello") -> dict:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": int(time.time()), "text": text,
        "from": {"id": user, "is_bot": False, "first_name": "x"},
        "chat": {"id": user, "type": "private", "first_name": "x"}}}


def test_a_held_answer_is_sent_at_once_by_its_units_flush(sqlite_url):
    """_answer queues a throttled customer's answer with send_at in the future; the unit's own _flush(ids)
    sends it straight away (Outbox.due(ids) ignores send_at)."""
    bot, calls = make_bot(sqlite_url)

    async def run():
        async with bot.unit():
            queue(OutboxRow(chat_id=1, method="send", payload={"text": "held"}, user_key="1", held_for="1",
                            send_at=utcnow() + timedelta(seconds=60)))
    asyncio.run(run())
    assert [c.payload["text"] for c in calls] == [], f"a held answer was sent at once: {[c.payload for c in calls]}"


def test_a_failure_in_flush_after_the_commit_runs_the_update_again(sqlite_url):
    """handle_update treats an exception from _flush (after the unit committed) as a commit failure:
    Inbox.fail turns the done row into retry, and the update is handled a second time."""
    bot, calls = make_bot(sqlite_url, telegram_retry_seconds=0.01)
    data = message_update(10, 555)
    assert bot.inbox.add(10, data, "555")
    update = Update.de_json(data, bot.application.bot)
    runs = []

    async def process(u):
        runs.append(u.update_id)
        queue(OutboxRow(chat_id=555, method="send", payload={"text": "answer"}, user_key="555"))

    real_done, failed = bot.outbox.done, []

    def done_once_broken(results):
        if not failed:
            failed.append(1)
            raise OperationalError("UPDATE telegram_outbox", {}, Exception("database is locked"))
        return real_done(results)

    bot.outbox.done = done_once_broken

    async def run():
        await bot.handle_update(update, process)
        with bot.service.store.reading() as s:
            status = s.get(InboxRow, 10).status
        time.sleep(0.05)
        for d in bot.inbox.due():  # as on_retry_tick does
            await bot.handle_update(Update.de_json(d, bot.application.bot), process)
        return status
    status = asyncio.run(run())
    assert runs == [10], f"status after the flush failure: {status}; the update ran {len(runs)} times; " \
                         f"{len(calls)} sends"


def test_sqlite_unit_across_awaits_starves_the_thread_pool(sqlite_url):
    """A unit holds SQLite's write lock across awaits; concurrent inbox writes (a webhook burst) fill the default
    thread pool while they wait for that lock, so the unit cannot get a thread to finish: all wait out the
    busy timeout and the writes fail with 'database is locked' (InboxQueue then tells customers the database is away)."""
    bot, calls = make_bot(sqlite_url)
    told: list[int] = []

    async def unreachable(update):
        told.append(update.update_id)

    q = InboxQueue(bot.inbox, unreachable=unreachable, writer=bot._writer)  # as TelegramBot wires it to receive for workers

    async def run():
        started = time.monotonic()

        async def a_unit():
            async with bot.unit() as unit:
                await bot._db(lambda: unit.session.get(StaffModeRow, 1))  # BEGIN IMMEDIATE taken
                await asyncio.sleep(0.2)  # the burst arrives meanwhile
                await bot._db(lambda: unit.session.get(StaffModeRow, 2))
            return time.monotonic() - started

        async def burst():
            await asyncio.sleep(0.05)
            await asyncio.gather(*(q.put(Update.de_json(message_update(100 + i, 900 + i), bot.application.bot))
                                   for i in range(12)))

        took, _ = await asyncio.gather(a_unit(), burst())
        return took
    took = asyncio.run(run())
    assert took < 2 and not told, f"the unit took {took:.1f} s; customers told the database is away: {told}"


def test_the_receiver_sends_what_a_live_worker_is_still_sending(sqlite_url):
    """Worker mode: a worker's flush is slow (a flood wait, a network retry); after LEFT_AFTER the receiving
    process's outbox tick takes the same pending rows as 'left by a stopped process' and sends them too."""
    worker, worker_calls = make_bot(sqlite_url, role="work")
    receiver, receiver_calls = make_bot(sqlite_url, role="receive")

    async def slow_call(row):
        worker_calls.append(row)
        await asyncio.sleep(6)  # e.g. AIORateLimiter waiting out a group chat's 20/minute, or a timeout + retry
        return None

    worker._call = slow_call

    async def run():
        async def work():
            async with worker.unit():
                for i in range(2):
                    queue(OutboxRow(chat_id=-100, method="send", payload={"text": f"card {i}"}))

        async def tick():
            await asyncio.sleep(5.5)
            await receiver._flush(None)
        await asyncio.gather(work(), tick())
    asyncio.run(run())
    sent = [r.payload["text"] for r in worker_calls] + [r.payload["text"] for r in receiver_calls]
    assert len(sent) == len(set(sent)), f"sent twice: {sent}"


def test_a_blocking_write_on_the_event_loop_waits_out_a_unit(sqlite_url):
    """on_retention_tick runs purge() (its own Session, BEGIN IMMEDIATE) on the event-loop thread: a unit holding
    the write lock across an await cannot resume, so the purge waits the whole busy timeout and fails."""
    bot, _ = make_bot(sqlite_url, retention_days=30)

    async def run():
        async def a_unit():
            async with bot.unit() as unit:
                await bot._db(lambda: unit.session.get(StaffModeRow, 1))
                await asyncio.sleep(0.1)
                await bot._db(lambda: unit.session.get(StaffModeRow, 2))

        async def retention():
            await asyncio.sleep(0.05)
            started = time.monotonic()
            try:
                await bot.on_retention_tick(None)  # the purge, as the timed check runs it
                return None, time.monotonic() - started
            except OperationalError as exc:
                return exc, time.monotonic() - started
        _, (error, took) = await asyncio.gather(a_unit(), retention())
        return error, took
    error, took = asyncio.run(run())
    assert error is None and took < 1, f"purge took {took:.1f} s and failed: {error!r}"


def test_a_failing_statement_then_on_error_on_each_database(database_url):
    """A handler's statement fails (PostgreSQL aborts the transaction), PTB calls on_error inside the unit:
    _undo rolls back, the failure is recorded and the customer told, all committed."""
    from sqlalchemy import text
    from telegram.ext import MessageHandler, filters


    bot, calls = make_bot(database_url, telegram_retry_seconds=60)
    data = message_update(20, 777, "/start")
    assert bot.inbox.add(20, data, "777")

    async def failing(update, context):
        await bot._db(lambda: UNIT.get().execute(text("select * from no_such_table")))

    bot.application.handlers[0].insert(0, MessageHandler(filters.ALL, failing))

    async def run():
        await bot.application.initialize() if False else None
        bot.application._initialized = True
        await bot.application.process_update(Update.de_json(data, bot.application.bot))
    asyncio.run(run())
    with bot.service.store.reading() as s:
        row = s.get(InboxRow, 20)
        assert row.status == "retry" and row.attempts == 1, row
    assert [c.chat_id for c in calls] == [777], [c.payload for c in calls]


def test_a_savepoint_failure_caught_by_the_caller_leaves_the_unit_usable(database_url):
    """casework.rate raises CaseworkError inside writing(): the savepoint is rolled back, the unit goes on."""
    from bot.casework import CaseworkError
    bot, calls = make_bot(database_url)

    async def run():
        async with bot.unit():
            try:
                await bot._db(bot.casework.rate, "KF-20260101-0001", 5, "telegram", "1")
            except CaseworkError:
                pass
            await bot._db(bot.casework.add_staff, 42, "staff", None, [])
            queue(OutboxRow(chat_id=1, method="send", payload={"text": "ok"}))
    asyncio.run(run())
    assert bot.casework.staff(42) is not None and len(calls) == 1


def test_a_worker_failure_unlocks_its_update_for_another_worker(postgres_url):
    """Worker mode on PostgreSQL: worker A's handler fails; on_error's _undo rolls the whole unit back, which
    drops the FOR UPDATE lock claim() took, while the row is still 'pending'. Worker B claims and handles it;
    A then records the failure (status 'retry' over B's 'done'), and the retry handles it a third time."""
    from telegram.ext import MessageHandler, filters
    from dialogs.conversation import Inbound, Reply, Turn

    a, a_calls = make_bot(postgres_url, role="work", telegram_retry_seconds=0.01)
    b, b_calls = make_bot(postgres_url, role="work", telegram_retry_seconds=0.01)
    data = message_update(30, 888, "hi")
    assert a.inbox.add(30, data, "888")
    handled = []

    def handler_for(bot):
        async def handler(update, context):
            if not handled:
                handled.append("failed")
                raise RuntimeError("a passing failure")
            await bot._db(bot.service.record, "telegram", "888", Inbound(text="hi"), Turn([Reply("answer")]))
            queue(OutboxRow(chat_id=888, method="send", payload={"text": "answer"}, user_key="888"))
            handled.append("handled")
        return handler

    for bot in (a, b):
        bot.application.handlers[0].insert(0, MessageHandler(filters.ALL, handler_for(bot)))
        bot.application._initialized = True
    slow_latest = a.casework.latest_case

    def latest_case(*args):  # the natural gap between _undo and inbox.fail, widened
        time.sleep(0.5)
        return slow_latest(*args)

    a.casework.latest_case = latest_case

    async def run():
        async def worker_b():
            await asyncio.sleep(0.25)  # while A is between _undo and inbox.fail
            return await b.work_once()
        await asyncio.gather(a.work_once(), worker_b())
        with a.service.store.reading() as s:
            r = s.get(InboxRow, 30)
            print("AFTER A+B:", handled, r.status, r.attempts)
        await asyncio.sleep(0.05)
        a.inbox.due()  # the retry tick: retry -> pending
        await b.work_once()
    asyncio.run(run())
    answers = [c.payload["text"] for c in a_calls + b_calls if c.payload.get("text") == "answer"]
    assert handled.count("handled") == 1, f"{handled}; answers sent: {len(answers)}"


def test_workers_send_one_customers_answers_out_of_order(sqlite_url):
    """claim() waits only for the earlier update to be committed, not for its answers to be sent: worker A is
    still sending the answer to message 1 (a slow call) when worker B handles message 2 and sends its answer."""
    from telegram.ext import MessageHandler, filters

    a, a_calls = make_bot(sqlite_url, role="work")
    b, b_calls = make_bot(sqlite_url, role="work")
    order: list[str] = []
    for i in (1, 2):
        a.inbox.add(40 + i, message_update(40 + i, 999, f"m{i}"), "999")

    async def handler(update, context):
        queue(OutboxRow(chat_id=999, method="send", payload={"text": f"answer to {update.message.text}"}, user_key="999"))

    async def slow(row):
        await asyncio.sleep(1.0)  # a network retry, a flood wait, a long reply cut in several messages
        order.append(row.payload["text"])

    async def fast(row):
        order.append(row.payload["text"])

    a._call, b._call = slow, fast
    for bot in (a, b):
        bot.application.handlers[0].insert(0, MessageHandler(filters.ALL, handler))
        bot.application._initialized = True

    async def run():
        async def later():  # B polls as a worker does: m2 is taken once m1's answer is sent
            await asyncio.sleep(0.5)
            for _ in range(50):
                if await b.work_once():
                    return
                await asyncio.sleep(0.1)
        await asyncio.gather(a.work_once(), later())
    asyncio.run(run())
    assert order == ["answer to m1", "answer to m2"], order


def test_a_customer_over_the_limit_gets_every_answer_and_a_notice_each_time(sqlite_url):
    """Through Customers._answer: burst 1, rate tiny; five quick messages. Expected (as before the outbox): the
    first answer, one 'too fast' notice, and later only the latest answer."""
    from dialogs.conversation import Reply
    bot, calls = make_bot(sqlite_url, telegram_burst=1, telegram_rate=0.01)

    async def run():
        for i in range(5):
            async with bot.unit():
                await bot._answer(None, 5, "5", [Reply(f"answer {i}")], bot.throttle.take("5"))
    asyncio.run(run())
    sent = [c.payload["text"][:12] for c in calls]
    assert len(sent) <= 2, sent


def test_supervisor_filter_inside_a_unit_on_sqlite(sqlite_url):

    bot, calls = make_bot(sqlite_url)
    bot.casework.add_staff(4242, "supervisor", None, [])
    data = message_update(50, 4242, "/cases")
    data["message"]["entities"] = [{"offset": 0, "length": 6, "type": "bot_command"}]
    bot.inbox.add(50, data, "4242")
    bot.application._initialized = True
    bot.service.router.wait = lambda: None
    started = time.monotonic()
    asyncio.run(bot.application.process_update(Update.de_json(data, bot.application.bot)))
    assert time.monotonic() - started < 3 and len(calls) == 1, (time.monotonic() - started, [c.payload for c in calls])


def test_two_processes_announce_one_page_action_twice(postgres_url):
    """receive + workers all run the deadline tick, so page_actions runs in several processes; its select takes
    no lock, so two ticks that overlap both take the same supervisor-page close (two rating requests)."""
    from bot.casework import Casework
    from bot.storage.tables import CaseRow
    from dialogs.conversation import Inbound
    service = Service.from_settings(Settings(database_url=postgres_url))
    for line in ["货物滞留", "12345678", "13800138000"]:
        service.receive("telegram", "5001", Inbound(text=line))
    desks = [Casework(Service.from_settings(Settings(database_url=postgres_url))) for _ in range(2)]
    with service.store.reading() as s:
        number = s.exec(select(CaseRow)).one().number
    desks[0].resolve(number, None, by="supervisor-page")
    for desk in desks:
        real = desk._case

        def slow(session, n, open_only=False, real=real):
            time.sleep(0.3)  # the rest of the tick's unit (cards queued, prune) before its commit
            return real(session, n, open_only)
        desk._case = slow
    results = [None, None]

    def tick(i):
        results[i] = desks[i].page_actions()
    threads = [threading.Thread(target=tick, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    taken = [len(r) for r in results]
    assert sum(taken) == 1, f"taken by each process: {taken}"


def test_an_arriving_update_is_kept_and_handled_in_one_commit_and_a_redelivery_is_dropped(sqlite_url):
    """receive: the inbox row and the handling commit together (one commit); the same update delivered
    again (Telegram's redelivery) finds its row and is not handled twice."""
    from sqlalchemy import event

    bot, calls = make_bot(sqlite_url)
    runs: list[int] = []

    async def process(u):
        runs.append(u.update_id)
        queue(OutboxRow(chat_id=777, method="send", payload={"text": "answer"}, user_key="777"))

    bot._process = process
    commits: list[bool] = []
    event.listen(bot.service.store.db, "commit", lambda conn: commits.append(UNIT.get() is not None))
    update = Update.de_json(message_update(60, 777), bot.application.bot)

    async def run():
        await bot.application.update_queue.put(update)  # as the poller and the webhook do
        first = list(commits)
        await bot.application.update_queue.put(Update.de_json(message_update(60, 777), bot.application.bot))
        return first
    first = asyncio.run(run())
    assert first == [True, False], f"commits: {first} (True: the unit's)"
    assert runs == [60], f"handled {len(runs)} times"
    assert [c.payload["text"] for c in calls] == ["answer"]
    with bot.service.store.reading() as s:
        assert s.get(InboxRow, 60).status == "done"
    assert bot.application.update_queue.empty()


def test_an_arriving_update_that_fails_is_kept_with_its_body_for_the_retries(sqlite_url):
    """A unit that fails rolls back the row it was keeping; the failure keeps the update whole, and the
    retry handles it from that body."""
    bot, calls = make_bot(sqlite_url, telegram_retry_seconds=0.01)
    runs: list[str] = []

    async def process(u):
        runs.append(u.message.text)
        if len(runs) == 1:
            raise RuntimeError("a bug")

    bot._process = process

    async def run():
        await bot.application.update_queue.put(Update.de_json(message_update(70, 888, "货在哪"), bot.application.bot))
        with bot.service.store.reading() as s:
            row = s.get(InboxRow, 70)
            kept = (row.status, row.data)
        time.sleep(0.05)
        for d in bot.inbox.due():  # as on_retry_tick does
            await bot.handle_update(Update.de_json(d, bot.application.bot), process)
        return kept
    status, data = asyncio.run(run())
    assert status == "retry"
    assert data["message"]["text"] == "货在哪"
    assert runs == ["货在哪", "货在哪"]
    with bot.service.store.reading() as s:
        assert s.get(InboxRow, 70).status == "done"
