"""The supervisors' Telegram shortcuts /cases and /case <number>, through the real PTB stack against the
Bot API emulator (fixtures from test_telegram); anyone else's /cases still reaches the engine."""

from __future__ import annotations

from bot.config import StaffConfig
from test_telegram import (CUSTOMER_ID, STAFF_CHAT, STAFF_ID, SUPERVISOR_CHAT, SUPERVISOR_ID,  # noqa: F401
                           open_stranded_case, shared_engine, world)


def test_a_supervisor_lists_open_cases_and_reads_one(world):
    world.start(staff=[StaffConfig(telegram_id=STAFF_ID, role="staff", chat_id=STAFF_CHAT),
                       StaffConfig(telegram_id=SUPERVISOR_ID, role="supervisor", chat_id=SUPERVISOR_CHAT)])
    customer = world.user(CUSTOMER_ID, "王")
    supervisor = world.user(SUPERVISOR_ID, "张主管", SUPERVISOR_CHAT, "supergroup")
    number = open_stranded_case(customer)

    supervisor.say("/cases")
    listed = supervisor.expect("处理中 1 件，其中超时 0 件")
    assert f"{number} 货物滞留 第1步 托运窗口 期限" in listed.text

    supervisor.say(f"/case {number}")
    summary = supervisor.expect(f"案件 {number}｜货物滞留｜处理中")
    assert "运单号：12345678" in summary.text and "联系电话：13800138000" in summary.text
    assert "最近的消息：" in summary.text and "客户：13800138000" in summary.text
    supervisor.say("/case KF-20990101-0001")
    supervisor.expect("没有编号为 KF-20990101-0001 的案件")


def test_a_customers_cases_command_is_no_shortcut(world):
    world.start(staff=[StaffConfig(telegram_id=STAFF_ID, role="staff", chat_id=STAFF_CHAT)])
    customer = world.user(CUSTOMER_ID, "王")
    open_stranded_case(customer)
    customer.say("/cases")
    customer.expect("请问您想反映哪方面的问题")  # the engine's answer to an unknown command: the menu
    assert not any("其中超时" in m.text for m in customer.messages())
