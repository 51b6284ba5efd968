"""The Telegram adapter (bot/telegram/): its pieces, then the real PTB Application end to end
against the telegram-test-api emulator, which plays Telegram's server and the users
(tests/telegram_harness.py says how its gaps are filled)."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import event
from sqlmodel import select

from bot.casework import Casework
from bot.config import Settings, StaffConfig
from bot.logs import Redact
from bot.service import BackgroundRouter, Service
from bot.storage.engine import UNIT, connect
from bot.storage.store import Store
from bot.storage.tables import (AttachmentRow, CaseRow, ConversationRow, EventRow, InboxRow, MessageRow, OutboxRow,
                               utcnow)
from bot.telegram import Throttle, command_text, split_message
from dialogs.engine import Engine
from telegram_harness import WAIT, RunningBot, Telegram, env_without_telegram, free_port, wait_until

STAFF_CHAT, SUPERVISOR_CHAT = -1001, -1002
STAFF_ID, SUPERVISOR_ID, CUSTOMER_ID, STRANGER_ID = 9001, 9100, 501, 777
tokens = itertools.count(1)


def empty_config(folder) -> str:
    """A kefu.toml with nothing in it: the test's settings come from the environment alone."""
    path = folder / "kefu.toml"
    path.write_text("")
    return str(path)


# -- pieces ---------------------------------------------------------------------------------------

def test_a_short_reply_is_one_message():
    assert split_message("您好\n请问有什么可以帮您？") == ["您好\n请问有什么可以帮您？"]


def test_a_long_reply_is_split_at_line_breaks():
    lines = [f"第{i}行：" + "货" * 90 for i in range(200)]  # about 19 000 characters
    chunks = split_message("\n".join(lines))
    assert len(chunks) > 4
    assert all(len(c) <= 4096 for c in chunks)
    assert [line for c in chunks for line in c.split("\n")] == lines  # every line whole, in order


def test_a_line_longer_than_a_message_is_cut_at_a_sentence_end():
    sentence = "货物已经到达转运中心。" * 500  # one line of 5 500 characters
    chunks = split_message(sentence)
    assert "".join(chunks) == sentence
    assert all(len(c) <= 4096 for c in chunks) and chunks[0].endswith("。")


def test_length_is_counted_as_telegram_counts_it():
    chunks = split_message("🚚" * 3000)  # each emoji is two UTF-16 units
    assert len(chunks) == 2 and "".join(chunks) == "🚚" * 3000
    assert all(len(c.encode("utf-16-le")) // 2 <= 4096 for c in chunks)


def test_the_throttle_allows_a_burst_then_its_rate():
    now = [0.0]
    throttle = Throttle(rate=1.0, burst=3, clock=lambda: now[0])
    assert [throttle.take("a") for _ in range(4)] == [True, True, True, False]
    assert throttle.take("b")  # per customer
    assert throttle.wait("a") == pytest.approx(1.0)
    now[0] = 1.0
    assert throttle.take("a") and not throttle.take("a")
    now[0] = 100.0
    assert [throttle.take("a") for _ in range(4)] == [True, True, True, False]  # never more than the burst


def test_commands_reach_the_engine_as_it_knows_them():
    assert command_text("/start@KefuBot") == "/start"
    assert command_text("/start campaign-7") == "/start"
    assert command_text("/status@KefuBot  KF-20261127-0001 ") == "/status KF-20261127-0001"
    assert command_text("货还没发") == "货还没发"


def test_the_token_is_never_logged(caplog):
    import logging

    token = "123456:SECRET-token"
    redact = Redact(pii=False)
    redact.secrets.append(token)
    caplog.handler.addFilter(redact)
    logging.getLogger("httpx").warning("HTTP Request: POST https://api.telegram.org/bot%s/getUpdates", token)
    assert token not in caplog.text and "bot<token>/getUpdates" in caplog.text


def test_kefu_telegram_without_a_token_says_what_to_do(tmp_path):
    env = {**env_without_telegram(), "KEFU_CONFIG": empty_config(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bot", "telegram"], capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 2
    assert "TELEGRAM_BOT_TOKEN is not set" in result.stderr and "BotFather" in result.stderr


# -- end to end -----------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def shared_engine(content):
    """One engine and router for every test's bot: the engine is stateless and training takes seconds."""
    router = BackgroundRouter(content)
    router.warm()
    return Engine(content, router), router


class World:
    """One test's Telegram: a bot token of its own, a database, and the bots started on them."""

    def __init__(self, emulator, proxy, content, shared_engine, database_url):
        self.emulator, self.proxy, self.content = emulator, proxy, content
        self.engine, self.router = shared_engine
        self.token = f"{100000 + next(tokens)}:TEST-{os.getpid()}"
        self.telegram = Telegram(emulator, proxy, self.token)
        self.database_url = database_url
        self.bots: list[RunningBot] = []

    def service(self) -> Service:
        return Service(self.content, self.engine, Store(connect(self.database_url), self.content.version,
                                                        self.engine.zone), self.router)

    def settings(self, **extra) -> Settings:
        values = dict(database_url=self.database_url, telegram_bot_token=self.token,
                      telegram_api_base_url=self.proxy.url, telegram_burst=1000, telegram_rate=1000.0)
        values.update(extra)
        return Settings(**values)

    def start(self, service: Service | None = None, **extra) -> RunningBot:
        running = RunningBot(self.settings(**extra), self.proxy, self.token, service or self.service())
        self.bots.append(running)
        return running

    def casework(self) -> Casework:
        return Casework(self.service())

    def user(self, user_id: int, name: str, chat_id: int | None = None, chat_type: str = "private"):
        return self.telegram.user(user_id, name, chat_id, chat_type)

    def session(self):
        return self.service().store.session()

    def stop(self) -> None:
        for running in self.bots:
            if running.thread.is_alive():
                running.stop()


@pytest.fixture
def world(emulator, content, shared_engine, sqlite_url):
    world = World(*emulator, content, shared_engine, sqlite_url)
    yield world
    world.stop()


def staff_group_with_a_case(world):
    """A staff member (and a stranger) in the staff chat, and the card of a case a customer has just opened:
    (customer, staff, stranger, case number, card)."""
    world.casework().add_staff(STAFF_ID, "staff", STAFF_CHAT)  # as `kefu staff add 9001 --chat -1001` does
    world.start()
    customer = world.user(CUSTOMER_ID, "王")
    staff = world.user(STAFF_ID, "李客服", STAFF_CHAT, "supergroup")
    stranger = world.user(STRANGER_ID, "路人", STAFF_CHAT, "supergroup")
    number = open_stranded_case(customer)
    return customer, staff, stranger, number, staff.expect(f"案件 {number}｜货物滞留｜处理中")


def open_stranded_case(customer, by_text: bool = False) -> str:
    """A customer's conversation from /start to an opened case; returns the case number."""
    customer.say("/start")
    menu = customer.expect("请问您想反映哪方面的问题")
    if by_text:
        customer.say("货三天了还没发出去，我姓王")
    else:
        customer.press("货物滞留、迟迟不发", menu)
    customer.expect("请提供您的运单号")
    customer.say("12345678")
    customer.expect("请留下您的联系电话")
    customer.say("13800138000")
    opened = customer.expect("已为您登记，案件编号")
    return opened.text.split("案件编号：")[1][:16]


def test_a_customer_opens_a_case_with_buttons(world):
    world.start()
    customer = world.user(CUSTOMER_ID, "王")
    customer.say("/start")
    customer.expect("欢迎联系盛辉物流客服")
    menu = customer.expect("请问您想反映哪方面的问题")
    assert ("货物滞留、迟迟不发", "menu:1") in menu.buttons
    assert all(len(data.encode()) <= 64 for _, data in menu.buttons)
    customer.press("货物滞留、迟迟不发", menu)
    customer.expect("请提供您的运单号")
    pressed = world.telegram.message(customer.chat_id, menu.message_id)
    assert pressed.buttons == [] and pressed.text.endswith("👉 货物滞留、迟迟不发")  # cannot be pressed twice
    assert world.proxy.calls(world.token, "answerCallbackQuery")  # the press was answered

    customer.press("货物滞留、迟迟不发", menu)  # an old keyboard, pressed again all the same
    customer.expect("这个选项已经失效了")
    customer.say("12345678")
    customer.say("13800138000")
    customer.expect("已为您登记，案件编号")

    commands = json.loads(world.proxy.calls(world.token, "setMyCommands")[0]["commands"])
    assert [c["command"] for c in commands] == ["start", "menu", "cancel", "status", "human", "help"]
    with world.session() as session:
        case = session.exec(select(CaseRow)).one()
        assert (case.category, case.waybill, case.contact) == ("stranded", "12345678", "13800138000")
        choices = [m.choice for m in session.exec(select(MessageRow).where(MessageRow.direction == "in"))]
        assert choices.count("menu:1") == 2


def test_a_customer_opens_a_case_by_writing_and_asks_for_its_progress(world):
    world.start()
    customer = world.user(CUSTOMER_ID, "王")
    number = open_stranded_case(customer, by_text=True)
    customer.say(f"/status {number}")
    customer.expect(f"案件 {number}（货物滞留）：处理中")
    customer.say("/help")
    customer.expect("使用说明")
    with world.session() as session:
        assert session.exec(select(CaseRow)).one().number == number


def test_staff_claim_a_case_and_answer_the_customer(world):
    customer, staff, stranger, number, card = staff_group_with_a_case(world)
    assert "🆕 新案件" in card.text and "运单号：12345678" in card.text and "托运窗口" in card.text
    assert {label for label, _ in card.buttons} >= {"认领", "办结", "升级", "发送答复1"}
    assert all(len(data.encode()) <= 64 for _, data in card.buttons)

    stranger.press("认领", card)  # not staff: refused, and the card stays as it was
    wait_until(lambda: any("仅供客服工作人员使用" in call.get("text", "")
                           for call in world.proxy.calls(world.token, "answerCallbackQuery")), "the refusal")
    assert world.telegram.message(STAFF_CHAT, card.message_id).buttons == card.buttons
    stranger.say(f"/claim {number}")
    stranger.expect("仅供客服工作人员使用")
    cards = len([m for m in staff.messages() if "📋 案件卡片" in m.text])
    stranger.say(f"/status {number}")  # a card shows the customer's phone: not for non-staff in a staff group
    wait_until(lambda: sum("仅供客服工作人员使用" in m.text for m in stranger.messages()) >= 2, "the second refusal")
    assert len([m for m in staff.messages() if "📋 案件卡片" in m.text]) == cards

    staff.press("认领", card)
    claimed = wait_until(lambda: "已认领" in world.telegram.message(STAFF_CHAT, card.message_id).text
                         and world.telegram.message(STAFF_CHAT, card.message_id), "the card to show the claim")
    assert "认领" not in [label for label, _ in claimed.buttons] and f"跟进人：{STAFF_ID}" in claimed.text

    staff.say("您好，已联系托运窗口，今天下午发车。", reply_to=claimed)  # a Telegram reply to the card
    customer.expect(f"客服回复（案件 {number}）：\n您好，已联系托运窗口，今天下午发车。")
    staff.expect(f"已发送给客户（案件 {number}）")

    customer.say("好的，谢谢，我明天上午在家")  # reaches the staff member following the case
    customer.expect(f"已转达给跟进案件 {number} 的工作人员")
    forwarded = staff.expect(f"客户留言（案件 {number}）")
    assert "我明天上午在家" in forwarded.text
    staff.say("收到，发车后短信通知您。", reply_to=forwarded)
    customer.expect("收到，发车后短信通知您。")

    staff.say(f"/reply {number} 车牌号 闽A12345。")
    customer.expect("车牌号 闽A12345。")
    staff.press("发送答复1", claimed)  # the manual's answer point, filled with the case's facts
    customer.expect("我这边帮您了解落实")

    with world.session() as session:
        staff_lines = [m.text for m in session.exec(select(MessageRow).where(MessageRow.staff_id == STAFF_ID))]
        assert len(staff_lines) == 4 and staff_lines[0].endswith("今天下午发车。")
        assert "好的，谢谢，我明天上午在家" in [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in"))]
        case = session.exec(select(CaseRow)).one()
        assert case.assigned_to == STAFF_ID and case.paused_at is not None  # waiting on the customer
        kinds = [e.kind for e in session.exec(select(EventRow).order_by(EventRow.id))]
        assert {"case_opened", "case_claimed", "staff_replied", "relayed_to_staff"} <= set(kinds)


def test_a_customer_button_forged_on_a_staff_card_does_nothing(world):
    """Issue 13's F7: anyone in a staff group sent menu:1 on a case card, and kefu ran a customer's turn in the
    staff group (greeting and flow posted there, a conversation for them) and took the card's buttons away."""
    _, staff, stranger, _, card = staff_group_with_a_case(world)
    posted = len(world.telegram.bot_messages(STAFF_CHAT))
    for forged in ("menu:1", "menu:2"):
        stranger.forge(forged, card)
    wait_until(lambda: len(world.proxy.calls(world.token, "answerCallbackQuery")) >= 2, "both presses to be answered")
    time.sleep(0.5)
    assert len(world.telegram.bot_messages(STAFF_CHAT)) == posted  # nothing posted in the staff chat
    assert world.telegram.message(STAFF_CHAT, card.message_id).buttons == card.buttons
    assert not world.proxy.calls(world.token, "editMessageReplyMarkup")
    with world.session() as session:
        assert session.exec(select(ConversationRow).where(ConversationRow.user_key == str(STRANGER_ID))).first() is None


def test_a_group_that_is_no_staff_chat_is_ignored_and_its_id_logged(world, caplog):
    caplog.set_level("INFO", logger="kefu.telegram")
    world.start()
    member = world.user(STRANGER_ID, "路人", -3003, "supergroup")
    member.say("/help")
    wait_until(lambda: any("chat -3003" in r.getMessage() and "no staff chat" in r.getMessage()
                           for r in caplog.records), "the ignored group's id in the log")
    assert world.telegram.bot_messages(-3003) == []


def test_a_resolved_case_is_rated_and_a_low_rating_alerts_the_supervisors(world):
    world.start(staff=[StaffConfig(telegram_id=STAFF_ID, role="staff", chat_id=STAFF_CHAT),  # as kefu.toml's [[staff]]
                       StaffConfig(telegram_id=SUPERVISOR_ID, role="supervisor", chat_id=SUPERVISOR_CHAT)])
    customer = world.user(CUSTOMER_ID, "王")
    staff = world.user(STAFF_ID, "李客服", STAFF_CHAT, "supergroup")
    supervisor = world.user(SUPERVISOR_ID, "张主管", SUPERVISOR_CHAT, "supergroup")
    number = open_stranded_case(customer)
    staff.expect(f"案件 {number}")
    staff.say(f"/resolve {number}")
    staff.expect("已办结")

    ask = customer.expect(f"您的案件 {number} 已处理完毕。请为本次服务打分")
    assert [label for label, _ in ask.buttons] == ["★", "★★", "★★★", "★★★★", "★★★★★"]
    customer.press("★", ask)
    why = customer.expect("很抱歉这次没能让您满意")
    supervisor.expect(f"低分评价：案件 {number} 获 1 星")
    customer.press("处理太慢", why)
    customer.expect("谢谢您的意见")
    supervisor.expect(f"案件 {number} 的低分原因：处理太慢")
    assert world.telegram.message(customer.chat_id, ask.message_id).buttons == []

    with world.session() as session:
        case = session.exec(select(CaseRow)).one()
        assert (case.status, case.rating, case.rating_reason) == ("closed", 1, "处理太慢")
    assert {m.telegram_id for m in world.casework().all_staff()} == {STAFF_ID, SUPERVISOR_ID}


def test_a_low_rating_reason_may_be_written(world):
    casework = world.casework()
    casework.add_staff(SUPERVISOR_ID, "supervisor", SUPERVISOR_CHAT)
    world.start()
    customer = world.user(CUSTOMER_ID, "王")
    supervisor = world.user(SUPERVISOR_ID, "张主管", SUPERVISOR_CHAT, "supergroup")
    number = open_stranded_case(customer)
    supervisor.say(f"/resolve {number}")
    customer.press("★★", customer.expect("请为本次服务打分"))
    customer.expect("很抱歉这次没能让您满意")
    customer.say("等了三天才有人理我")
    customer.expect("谢谢您的意见")
    supervisor.expect(f"案件 {number} 的低分原因：等了三天才有人理我")
    with world.session() as session:
        assert session.exec(select(CaseRow)).one().rating_reason == "等了三天才有人理我"


def test_missed_deadlines_are_reminded_then_escalated_from_the_database(world):
    casework = world.casework()
    casework.add_staff(STAFF_ID, "staff", STAFF_CHAT)
    world.start()
    customer = world.user(CUSTOMER_ID, "王")
    staff = world.user(STAFF_ID, "李客服", STAFF_CHAT, "supergroup")
    number = open_stranded_case(customer)
    staff.expect(f"案件 {number}")
    world.stop()  # the deadline passes while the bot is down
    with world.session() as session, session.begin():
        case = session.exec(select(CaseRow)).one()
        case.step_deadline = utcnow() - timedelta(minutes=5)
        session.add(case)

    world.start(telegram_deadline_seconds=0.2, grace_hours=0)
    staff.expect("⏰ 已超过处理期限")
    escalated = staff.expect("⏫ 超过期限未处理，已升级到下一步")
    assert "第2/3步 分公司经理" in escalated.text
    with world.session() as session:
        case = session.exec(select(CaseRow)).one()
        assert (case.step, case.step_role) == (1, "branch_manager")


def test_photos_and_documents_are_kept_with_the_case_and_other_messages_answered(world):
    world.start()
    customer = world.user(CUSTOMER_ID, "王")
    customer.say("/start")
    customer.expect("请问您想反映哪方面的问题")
    photo = [{"file_id": "PHOTO-small", "file_unique_id": "u1", "width": 90, "height": 90, "file_size": 900},
             {"file_id": "PHOTO-big", "file_unique_id": "u2", "width": 1280, "height": 960, "file_size": 99000}]
    customer.send(photo=photo, caption="外箱破损")
    customer.expect("会一并附上")
    customer.send(sticker={"file_id": "STK", "file_unique_id": "s1", "type": "regular", "width": 512, "height": 512,
                           "is_animated": False, "is_video": False})
    customer.expect("无法处理语音、贴纸、位置")
    customer.send(location={"latitude": 26.07, "longitude": 119.3})
    customer.expect("无法处理语音、贴纸、位置")
    number = open_stranded_case(customer)
    customer.send(document={"file_id": "DOC-1", "file_unique_id": "d1", "file_name": "签收单.pdf",
                            "mime_type": "application/pdf", "file_size": 2048})
    customer.expect(f"已附在案件 {number} 中")

    with world.session() as session:
        kept = session.exec(select(AttachmentRow).order_by(AttachmentRow.id)).all()
        assert [(a.kind, a.file_id, a.case_number) for a in kept] == [("photo", "PHOTO-big", number),
                                                                        ("document", "DOC-1", number)]
        assert kept[0].meta["caption"] == "外箱破损" and kept[1].meta["file_name"] == "签收单.pdf"
        inbound = [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in"))]
        assert {"[照片] 外箱破损", "[贴纸]", "[位置]", "[文件 签收单.pdf]"} <= set(inbound)


def test_a_customer_writing_too_fast_is_slowed_and_nothing_is_lost(world):
    world.start(telegram_burst=2, telegram_rate=1.0)
    customer = world.user(CUSTOMER_ID, "王")
    sent = ["/help", "帮助", "怎么用", "使用说明", "help", "/help"]
    for text in sent:
        customer.say(text)
    customer.expect("您发得太快了")
    customer.expect("使用说明")  # the answer to a later message, once the customer may send again

    def inbound():
        with world.session() as session:
            return [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in")
                                                 .order_by(MessageRow.id))]

    wait_until(lambda: inbound() == sent, "every message to be stored and handled")
    with world.session() as session:
        assert session.exec(select(EventRow).where(EventRow.kind == "slowed_down")).first() is not None


def test_a_restart_in_the_middle_of_a_conversation_loses_nothing(world):
    world.start()
    customer = world.user(CUSTOMER_ID, "王")
    customer.say("/start")
    customer.press("货物滞留、迟迟不发", customer.expect("请问您想反映哪方面的问题"))
    customer.say("12345678")
    customer.expect("请留下您的联系电话")
    world.stop()

    world.start()  # a new Application on the same database
    before = customer.cursor
    customer.say("13800138000")
    customer.expect("已为您登记，案件编号")
    assert not [m for m in customer.messages() if m.message_id > before and "欢迎" in m.text]  # not a new conversation
    with world.session() as session:
        assert session.exec(select(CaseRow)).one().contact == "13800138000"
    wait_until(lambda: _inbox_statuses(world) == {"done"}, "every update to be marked handled")


def test_an_update_kept_but_never_handled_is_handled_at_the_next_start(world):
    update = {"update_id": 424242, "message": {
        "message_id": 1, "date": int(time.time()), "text": "/start",
        "entities": [{"offset": 0, "length": 6, "type": "bot_command"}],
        "from": {"id": CUSTOMER_ID, "is_bot": False, "first_name": "王"},
        "chat": {"id": CUSTOMER_ID, "type": "private", "first_name": "王"}}}
    service = world.service()
    with service.store.session() as session, session.begin():  # as if the process died after keeping it
        session.add(InboxRow(update_id=424242, data=update))
    world.start(service)
    customer = world.user(CUSTOMER_ID, "王")
    customer.expect("欢迎联系盛辉物流客服")
    wait_until(lambda: _inbox_status(world, 424242) == "done", "the kept update to be marked handled")


def _outbox_sent(world) -> bool:
    with world.session() as session:
        rows = session.exec(select(OutboxRow)).all()
        return bool(rows) and all(r.status != "pending" for r in rows)


def test_each_update_is_handled_in_one_transaction(world):
    """Kept and handled in one transaction, before Telegram is told it arrived: the update, everything it does
    and the messages it says are one commit (a unit's). The only other is the sender's, after it: the messages
    marked sent once Telegram took them."""
    world.casework().add_staff(STAFF_ID, "staff", STAFF_CHAT)
    running = world.start(telegram_deadline_seconds=3600, telegram_retry_seconds=3600)  # no timed checks meanwhile
    customer = world.user(CUSTOMER_ID, "王")
    staff = world.user(STAFF_ID, "李客服", STAFF_CHAT, "supergroup")
    customer.say("/start")
    menu = customer.expect("请问您想反映哪方面的问题")
    wait_until(lambda: _outbox_sent(world), "the greeting to be sent")
    time.sleep(1.5)  # the timed checks' first runs (a second after start) are over
    commits: list[bool] = []  # per commit: was it a unit's (an update's handling)?
    event.listen(running.bot.service.store.db, "commit", lambda conn: commits.append(UNIT.get() is not None))

    def counted(act, answer) -> list[bool]:
        commits.clear()
        act()
        answer()
        wait_until(lambda: _outbox_sent(world) and len(commits) >= 2, "the answer to be marked sent")
        time.sleep(0.3)  # a stray commit would show here
        return list(commits)

    assert counted(lambda: customer.press("货物滞留、迟迟不发", menu), lambda: customer.expect("请提供您的运单号")) \
        == [True, False]
    assert counted(lambda: customer.say("12345678"), lambda: customer.expect("请留下您的联系电话")) == [True, False]
    # a case opened: the customer's turn, the case, its number and the staff card, in one
    assert counted(lambda: customer.say("13800138000"), lambda: staff.expect("🆕 新案件")) == [True, False]
    number = customer.expect("已为您登记，案件编号").text.split("案件编号：")[1][:16]
    assert counted(lambda: staff.say(f"/reply {number} 今天下午发车。"),
                   lambda: customer.expect("今天下午发车。")) == [True, False]


def test_a_stop_after_the_commit_sends_what_was_left_and_runs_nothing_twice(world):
    """The process ends after an update's transaction committed but before its messages went out: the next
    start sends them, once, and does not handle the update again (a staff reply, a message relayed to staff)."""
    world.casework().add_staff(STAFF_ID, "staff", STAFF_CHAT)
    running = world.start()
    customer = world.user(CUSTOMER_ID, "王")
    staff = world.user(STAFF_ID, "李客服", STAFF_CHAT, "supergroup")
    number = open_stranded_case(customer)
    staff.say(f"/claim {number}")
    staff.expect("已认领")
    wait_until(lambda: _outbox_sent(world), "everything so far to be sent")

    async def never(*_) -> None:  # the sender never runs: as if the process died right after each commit
        return None

    running.bot._flush = never
    staff.say(f"/reply {number} 车牌号 闽A12345。")
    customer.say("好的，谢谢，我明天在家")
    wait_until(lambda: _inbox_statuses(world) == {"done"} and not _outbox_sent(world), "both to be committed")
    world.stop()
    assert not [m for m in customer.messages() if "闽A12345" in m.text]

    world.start()
    customer.expect("车牌号 闽A12345。")
    staff.expect("客户留言")
    wait_until(lambda: _outbox_sent(world), "the outbox to be sent")
    time.sleep(1.5)  # three outbox ticks: a second copy would be sent by now
    assert len([m for m in customer.messages() if "闽A12345" in m.text]) == 1
    assert len([m for m in staff.messages() if "我明天在家" in m.text]) == 1
    with world.session() as session:
        kinds = [e.kind for e in session.exec(select(EventRow))]
        assert kinds.count("staff_replied") == 1 and kinds.count("relayed_to_staff") == 1
        said = [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in"))]
        assert said.count("好的，谢谢，我明天在家") == 1


def test_a_database_away_for_a_while_loses_nothing_and_handling_resumes(emulator, content, shared_engine, postgres_url):
    """The network to PostgreSQL goes away (every connection dropped, new ones refused) while a customer writes:
    they are told to wait, Telegram is not told the update arrived until it is kept, and once the database is
    back the message is handled, once."""
    from netgate import Gate

    server = postgres_url.split("@", 1)[1].split("/", 1)[0]
    host, port = server.rsplit(":", 1)
    gate = Gate(host, int(port))
    world = World(*emulator, content, shared_engine, postgres_url.replace(server, f"127.0.0.1:{gate.port}"))
    try:
        world.start(telegram_retry_seconds=0.5)
        customer = world.user(CUSTOMER_ID, "王")
        customer.say("/start")
        customer.expect("请问您想反映哪方面的问题")
        gate.close()
        customer.say("货放你们那三天了还不发")
        customer.expect("系统繁忙，请稍后")
        time.sleep(2)
        gate.reopen()
        customer.expect("运单号")
        customer.say("12345678")
        customer.expect("请留下您的联系电话")
        with world.session() as session:
            inbound = [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in")
                                                    .order_by(MessageRow.id))]
        assert inbound == ["/start", "货放你们那三天了还不发", "12345678"]
    finally:
        world.stop()
        gate.close()


def _inbox_statuses(world):
    with world.session() as session:
        return {r.status for r in session.exec(select(InboxRow))}


def _inbox_status(world, update_id):
    with world.session() as session:
        row = session.get(InboxRow, update_id)
        return row.status if row else None


def test_one_failing_update_does_not_stop_the_bot_and_is_retried(world, caplog):
    service = world.service()
    handle = service.handle
    failures = {"boom": 1}  # fails once, then works (a database that was away for a moment)

    def failing(channel, user_key, inbound, update_id=None, **kw):
        if failures.get(inbound.text, 0) > 0:
            failures[inbound.text] -= 1
            raise RuntimeError("the engine broke")
        return handle(channel, user_key, inbound, update_id, **kw)

    service.handle = failing  # the service fails, not the adapter
    world.start(service, telegram_retry_seconds=0.5)
    customer = world.user(CUSTOMER_ID, "王")
    number = open_stranded_case(customer)
    customer.say("/menu")
    customer.expect("请问您想反映哪方面的问题")
    customer.say("boom")
    busy = customer.expect("系统繁忙，请稍后")
    assert "已经记录" not in busy.text  # nothing of it was recorded yet: never said it was
    customer.say("/help")
    customer.expect("使用说明")
    customer.expect("这个问题我暂时回答不了")  # the retry: "boom" handled at last, once
    failed = [r for r in caplog.records if r.name == "kefu.telegram" and "failed" in r.getMessage()]
    assert failed and f"user {CUSTOMER_ID}, case {number}" in failed[0].getMessage()
    with world.session() as session:
        row = session.exec(select(InboxRow).where(InboxRow.attempts == 1)).one()
        assert row.status == "done" and row.error == "RuntimeError: the engine broke"
        said = [m.text for m in session.exec(select(MessageRow).where(MessageRow.direction == "in"))]
        assert said.count("boom") == 1


def test_an_update_that_always_fails_is_dead_lettered_and_the_supervisors_told(world):
    world.casework().add_staff(SUPERVISOR_ID, "supervisor", SUPERVISOR_CHAT)
    service = world.service()
    handle = service.handle

    def failing(channel, user_key, inbound, update_id=None, **kw):
        if inbound.text == "boom":
            raise RuntimeError("the engine broke")
        return handle(channel, user_key, inbound, update_id, **kw)

    service.handle = failing
    world.start(service, telegram_retry_seconds=0.2, telegram_attempts=2)
    customer = world.user(CUSTOMER_ID, "王")
    supervisor = world.user(SUPERVISOR_ID, "张主管", SUPERVISOR_CHAT, "supergroup")
    customer.say("boom")
    customer.expect("系统繁忙，请稍后")
    customer.expect("多次处理都没有成功")
    alert = supervisor.expect("一条消息多次处理失败")
    assert f"用户 {CUSTOMER_ID}" in alert.text
    with world.session() as session:
        row = session.exec(select(InboxRow)).one()
        assert (row.status, row.attempts) == ("dead", 2)
        assert session.exec(select(MessageRow)).all() == []  # nothing recorded: it was never handled

    env = {**env_without_telegram(), "KEFU_DATABASE_URL": world.database_url}
    listed = subprocess.run([sys.executable, "-m", "bot", "inbox"], capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0 and f"{row.update_id}  dead  2 次" in listed.stdout and "RuntimeError" in listed.stdout
    service.handle = handle  # fixed: sent back once more by hand, it is handled
    retried = subprocess.run([sys.executable, "-m", "bot", "inbox", "--retry", str(row.update_id)], capture_output=True,
                             text=True, env=env, timeout=120)
    assert retried.returncode == 0, retried.stderr
    customer.expect("请问您想反映哪方面的问题")
    with world.session() as session:
        assert session.exec(select(InboxRow)).one().status == "done"


def test_webhook_mode_refuses_a_wrong_secret_token(world):
    port = free_port()
    url = f"http://127.0.0.1:{port}/telegram/hook"
    world.start(telegram_webhook_url=url, telegram_listen="127.0.0.1", telegram_port=port,
                telegram_secret_token="right-secret")
    registered = world.proxy.calls(world.token, "setWebhook")[-1]
    assert registered["url"] == url and registered["secret_token"] == "right-secret"

    forged = {"update_id": 1, "message": {"message_id": 1, "date": int(time.time()), "text": "/start",
                                          "from": {"id": STRANGER_ID, "is_bot": False, "first_name": "X"},
                                          "chat": {"id": STRANGER_ID, "type": "private"}}}
    for headers in ({"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {}):
        response = httpx.post(url, json=forged, headers=headers, timeout=WAIT)
        assert response.status_code == 403

    customer = world.user(CUSTOMER_ID, "王")
    customer.say("/start")  # the emulator posts it to the webhook, with the right secret (see the harness)
    customer.expect("请问您想反映哪方面的问题")
    # the webhook answers Telegram once the update is kept and handled: its answers may reach the chat first
    wait_until(lambda: world.proxy.account(world.token).relayed, "the webhook to answer the emulator")
    assert world.proxy.account(world.token).relayed == [200]
    with world.session() as session:
        from bot.storage.tables import ConversationRow

        assert [c.user_key for c in session.exec(select(ConversationRow))] == [str(CUSTOMER_ID)]
        assert world.telegram.bot_messages(STRANGER_ID) == []


def test_kefu_telegram_runs_from_the_environment_and_never_logs_the_token(emulator, tmp_path):
    _, proxy = emulator
    token = f"{next(tokens) + 500000}:CLI-SECRET"
    env = {**env_without_telegram(), "TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_BASE_URL": proxy.url,
           "KEFU_DATABASE_URL": f"sqlite:///{tmp_path / 'kefu.db'}", "KEFU_CONFIG": empty_config(tmp_path)}
    process = subprocess.Popen([sys.executable, "-m", "bot", "telegram"], env=env, stderr=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: proxy.calls(token, "getUpdates") or process.poll() is not None, "kefu telegram to poll",
                   timeout=60)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        customer = Telegram(emulator[0], proxy, token).user(CUSTOMER_ID, "王")
        customer.say("/start")
        customer.expect("请问您想反映哪方面的问题")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=WAIT)
    assert process.returncode == 0, stderr
    assert "long polling" in stderr and token not in stderr and "CLI-SECRET" not in stderr


def test_a_person_asked_for_mid_complaint_opens_the_case_and_posts_one_card(world):
    world.casework().add_staff(STAFF_ID, "staff", STAFF_CHAT)
    world.start()
    customer = world.user(CUSTOMER_ID, "王")
    staff = world.user(STAFF_ID, "李客服", STAFF_CHAT, "supergroup")
    customer.say("货物滞留")
    customer.expect("请提供您的运单号")
    customer.say("12345678")
    customer.expect("请留下您的联系电话")
    customer.say("傻逼机器人，我要找人")  # in any words, and never stored as the phone
    reply = customer.expect("已为您转人工客服")
    assert "客服专员会在" in reply.text
    card = staff.expect("🙋 客户请求人工")
    assert "运单号：12345678" in card.text
    assert not any("🆕 新案件" in m.text for m in staff.messages())  # one card, not two
    with world.session() as session:
        case = session.exec(select(CaseRow)).one()
    assert (case.category, case.waybill, case.contact) == ("stranded", "12345678", None)


# -- staff tools in a private chat: the guided assistant and training --------------------------------

def test_staff_are_guided_through_a_live_complaint_with_assist(world):
    world.casework().add_staff(STAFF_ID, "staff", STAFF_CHAT)
    world.start()
    staff = world.user(STAFF_ID, "李客服")  # their private chat with the bot
    customer = world.user(CUSTOMER_ID, "王")

    customer.say("/assist")  # not staff: refused, and nothing starts
    customer.expect("仅供客服工作人员使用")
    staff.say("/assist")
    staff.expect("坐席助手已开始")
    menu = staff.press("转货或转外协查询")
    asked = staff.expect("✍️ 请记录：联系电话")
    assert "🗣 对客户说：" in asked.text and "不推诿，发现异常立即处理" in asked.text
    assert "转货或转外协查询" in menu.text  # the pressed choice is noted under the question
    staff.say("13800138000")
    staff.expect("✍️ 请记录：运单号")
    staff.say("12345678")
    opened = staff.expect("已建立，由您跟进。")
    assert "📋 要做：" in opened.text and "现在这一步是第1步（客服专员）：您已经按这一步处理了吗？" in opened.text
    assert [label for label, _ in opened.buttons] == ["是", "还没有"]
    staff.press("是", opened)
    solved = staff.expect("已记录：第1步已处理。")
    assert "客户的问题当场解决了吗？" in solved.text
    staff.say("结束")
    staff.expect("坐席助手已结束。")

    customer.say("你好")  # the customer's own conversation was never touched
    customer.expect("请问您想反映哪方面的问题")
    with world.session() as session:
        case = session.exec(select(CaseRow)).one()
        assert (case.category, case.assigned_to, case.waybill) == ("transfer", STAFF_ID, "12345678")
        kinds = [e.kind for e in session.exec(select(EventRow).where(EventRow.case_number == case.number))]
        assert "case_claimed" in kinds and kinds.count("step_confirmed") == 1
    staff.say("你好")  # after the session a staff member's private message is a customer's again
    staff.expect("请问您想反映哪方面的问题")


def test_staff_practise_in_telegram_and_see_their_training(world):
    casework = world.casework()
    casework.add_staff(STAFF_ID, "staff", STAFF_CHAT)
    casework.add_staff(SUPERVISOR_ID, "supervisor", SUPERVISOR_CHAT)
    world.start()
    staff = world.user(STAFF_ID, "李客服")
    group = world.user(STAFF_ID, "李客服", STAFF_CHAT, "supergroup")
    supervisor = world.user(SUPERVISOR_ID, "张主管")
    stranger = world.user(STRANGER_ID, "路人")

    stranger.say("/train")
    stranger.expect("仅供客服工作人员使用")
    group.say("/train")  # training is one to one, never in the staff group
    group.expect("请在与我的私聊中使用这个命令。")
    staff.say("/mytraining")
    staff.expect("还没有训练记录。")

    staff.say("/train")
    pick = staff.expect("请选择要练习的投诉类别")
    assert ("随机", "train:random") in pick.buttons and ("转货、转外协", "train:transfer") in pick.buttons
    staff.press("转货、转外协", pick)
    staff.expect("训练：转货、转外协（transfer）第")
    staff.say("你好，稍等")
    staff.expect("本轮得分: ")
    staff.say("/quit")  # a session left early is kept as unfinished
    staff.expect("—— 训练结束 ——")

    staff.say("/train transfer 1")
    staff.expect("客户: 我的货你们转给别的物流了")
    staff.say("孙先生您好，非常抱歉，系统查不到转货后的详细情况，请您留下联系方式，我来联系外协窗口查询。")
    turn = staff.expect("本轮得分: ")
    assert "客户: 我电话13705912345" in turn.text
    staff.say("好的，我已经记下了，查到后第一时间反馈给您。")
    staff.expect("本轮得分: ")
    staff.say("您放心，查到后我们会马上告诉您，您不用自己去联系外协公司。")
    end = staff.expect("—— 训练结束 ——")
    assert end.text.rstrip().endswith("score: 100/100")

    staff.say("/mytraining")
    mine = staff.expect("transfer #1  100/100")
    assert f"{STAFF_ID}: 2 次训练" in mine.text and "（未完成，1 轮）" in mine.text
    staff.say("/training")  # everyone's: for supervisors only
    staff.expect("仅供客服工作人员使用")
    supervisor.say("/training")
    supervisor.expect(f"{STAFF_ID}: 2 次训练")
    with world.session() as session:
        from bot.storage.tables import TrainingRow

        rows = session.exec(select(TrainingRow).order_by(TrainingRow.id)).all()
        assert [(r.trainee, r.finished, r.score) for r in rows][-1] == (str(STAFF_ID), True, 100)


def test_a_case_escalated_or_closed_on_the_supervisor_pages_is_announced_as_from_chat(world):
    world.casework().add_staff(STAFF_ID, "staff", STAFF_CHAT)
    world.start(telegram_deadline_seconds=0.5)
    customer = world.user(CUSTOMER_ID, "王")
    staff = world.user(STAFF_ID, "李客服", STAFF_CHAT, "supergroup")
    number = open_stranded_case(customer)
    staff.expect(f"案件 {number}")
    world.casework().escalate(number, None, by="lily")  # what the page's 升级到下一步 calls
    moved = staff.expect("⏫ 案件升级到本步")
    assert f"案件 {number}" in moved.text and "第2/" in moved.text
    world.casework().resolve(number, None, by="lily")  # what the page's 办结案件 calls
    ask = customer.expect(f"您的案件 {number} 已处理完毕。请为本次服务打分")
    assert [label for label, _ in ask.buttons] == ["★", "★★", "★★★", "★★★★", "★★★★★"]
    time.sleep(1.5)  # more deadline checks pass: each action is announced once
    assert sum("请为本次服务打分" in m.text for m in customer.messages()) == 1
    assert sum("⏫ 案件升级到本步" in m.text for m in staff.messages()) == 1
