"""Logs: other libraries at WARNING, one JSON object per line with --log-format json, and no customer
data: phones and waybills masked, message text left out unless --log-pii. A full Telegram conversation
run through the real `kefu telegram` is scanned for what must not be there."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys

import pytest

from bot import logs
from bot.casework import Casework
from bot.config import Settings
from bot.service import Service
from telegram_harness import WAIT, Telegram, wait_until

PHONE, OTHER_PHONE, WAYBILL = "13800138000", "13700001111", "SH20261127"
SAID = "货三天了还没发出去，我姓王"
REASON = f"快递员态度差 {OTHER_PHONE}"


@pytest.fixture
def captured():
    """Logging configured as the CLI does, into a buffer; put back as it was afterwards."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, {n: logging.getLogger(n).level for n in (*logs.QUIET, logs.KEFU)})
    stream = io.StringIO()
    yield stream
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name, level in saved[2].items():
        logging.getLogger(name).setLevel(level)


def test_phones_and_waybills_are_masked_and_ids_kept():
    line = (f"call {PHONE} or +86 138 0013 8000 or 0591-87654321; waybill {WAYBILL}, 12345678; "
            "case KF-20261127-0001 in chat -1001234567890")
    assert logs.mask(line) == ("call 138****8000 or 138****8000 or 0591-****21; waybill SH20****27, 12****78; "
                               "case KF-20261127-0001 in chat -1001234567890")
    # Right after Chinese characters, as customers write them (a CJK character is a \w to re).
    assert logs.mask("我的电话13812345678，运单号SH20261127到了吗") == "我的电话138****5678，运单号SH20****27到了吗"


def test_libraries_are_quiet_and_kefu_lines_are_json(captured):
    logs.configure(json_lines=True, stream=captured)
    logging.getLogger("transitions.core").info("Executed callback 'on_enter'")
    logging.getLogger("httpx").info("HTTP Request: POST ...")
    logging.getLogger("kefu.telegram").warning("update %s failed for %s", 7, PHONE, extra={"user": 501, "case": "KF-1"})
    try:
        raise ValueError(f"bad waybill {WAYBILL}")
    except ValueError:
        logging.getLogger("kefu.telegram").exception("boom")
    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["update 7 failed for 138****8000", "boom"]
    assert lines[0]["user"] == 501 and lines[0]["case"] == "KF-1" and lines[0]["level"] == "WARNING"
    assert "SH20****27" in lines[1]["exc_info"] and WAYBILL not in lines[1]["exc_info"]


def test_customer_words_need_log_pii(captured):
    logs.configure(stream=captured)
    logging.getLogger("kefu.telegram").warning("reason: %s", logs.Private(REASON))
    logs.configure(pii=True, stream=captured)
    logging.getLogger("kefu.telegram").warning("reason: %s", logs.Private(REASON))
    first, second = captured.getvalue().splitlines()
    assert REASON not in first and "characters hidden; --log-pii shows them" in first
    assert second.endswith(f"reason: {REASON}")


def test_a_full_telegram_conversation_logs_no_customer_data(emulator, tmp_path):
    emu, proxy = emulator
    token = "424242:LOGS-SCAN"
    database_url = f"sqlite:///{tmp_path / 'kefu.db'}"
    Casework(Service.from_settings(Settings(database_url=database_url))).add_staff(9001, "staff", -1001)  # no supervisor
    (tmp_path / "kefu.toml").write_text("")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("KEFU_", "TELEGRAM_"))},
           "TELEGRAM_BOT_TOKEN": token, "TELEGRAM_API_BASE_URL": proxy.url, "KEFU_DATABASE_URL": database_url,
           "KEFU_CONFIG": str(tmp_path / "kefu.toml")}
    process = subprocess.Popen([sys.executable, "-m", "bot", "--log-format", "json", "telegram"], env=env,
                               stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: proxy.calls(token, "getUpdates") or process.poll() is not None, "kefu telegram to poll", 60)
        telegram = Telegram(emu, proxy, token)
        customer, staff = telegram.user(501, "王"), telegram.user(9001, "李客服", -1001, "supergroup")
        customer.say("/start")
        customer.expect("请问您想反映哪方面的问题")
        customer.say(SAID)
        customer.expect("请提供您的运单号")
        customer.say(WAYBILL)
        customer.expect("请留下您的联系电话")
        customer.say(PHONE)
        number = customer.expect("已为您登记，案件编号").text.split("案件编号：")[1][:16]
        staff.expect(f"案件 {number}")
        staff.say(f"/resolve {number}")
        customer.press("★", customer.expect("请为本次服务打分"))
        customer.expect("很抱歉这次没能让您满意")
        customer.say(REASON)
        customer.expect("谢谢您的意见")
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=WAIT)
    assert process.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line one JSON object
    messages = [line["message"] for line in lines]
    assert any("long polling" in m for m in messages)
    assert any("no supervisor chat is configured" in m for m in messages)  # the reason was not posted: logged
    assert not [line for line in lines if line["logger"].startswith("transitions")]
    for secret in (PHONE, OTHER_PHONE, WAYBILL, SAID, "我姓王", "快递员态度差", token):
        assert secret not in stderr, secret


def test_a_database_error_shows_no_customer_data(postgres_url, tmp_path):
    # A database that refuses the turn (here a constraint on the message text): the turn fails, and its
    # error must not carry the turn's parameters.
    from sqlalchemy import create_engine, text

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KEFU_")}, "KEFU_DATABASE_URL": postgres_url}
    subprocess.run([sys.executable, "-m", "bot", "chat", "--user", "first"], input="你好\n", env=env, cwd=tmp_path,
                   capture_output=True, text=True, timeout=120, check=True)  # makes the tables
    with create_engine(postgres_url).begin() as conn:
        conn.execute(text("ALTER TABLE messages ADD CONSTRAINT refuse_lost CHECK (text NOT LIKE '%丢了%')"))
    typed = f"我的货丢了 运单 {WAYBILL} 电话 {PHONE}\n"
    result = subprocess.run([sys.executable, "-m", "bot", "chat", "--user", "nul"], input=typed, env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert result.stderr.startswith("kefu: unexpected error: IntegrityError") and result.stderr.count("\n") == 1
    for secret in (PHONE, WAYBILL, "我的货丢了"):
        assert secret not in result.stderr
    debug = subprocess.run([sys.executable, "-m", "bot", "--debug", "chat", "--user", "nul"], input=typed, env=env,
                           cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert "Traceback" in debug.stderr and "hidden due to hide_parameters" in debug.stderr
    for secret in (PHONE, WAYBILL, "我的货丢了"):
        assert secret not in debug.stderr
