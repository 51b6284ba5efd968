"""The guided assistant for staff (`kefu assist`): a live complaint walked through on the category's own
flow, the case opened and claimed by the staff member, the handling steps they confirm recorded."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import select

from bot.assist import Assistant, run_assist
from bot.casework import Casework
from bot.service import BackgroundRouter, Service
from bot.storage.engine import connect
from bot.storage.store import Store
from bot.storage.tables import CaseRow, ConversationRow, EventRow, StaffModeRow
from dialogs.assist import load_assist
from dialogs.content import ContentError
from dialogs.conversation import Inbound
from dialogs.engine import Engine

STAFF = 9001
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def engine(content):
    router = BackgroundRouter(content)
    return Engine(content, router), router


@pytest.fixture
def assistant(content, engine, database_url):
    service = Service(content, engine[0], Store(connect(database_url), content.version, engine[0].zone), engine[1])
    casework = Casework(service)
    casework.add_staff(STAFF, "staff")
    return Assistant(casework, load_assist(ROOT / "scripts_yaml", set(content.categories)))


def run(assistant: Assistant, lines: list[str]) -> str:
    out = io.StringIO()
    run_assist(assistant, STAFF, io.StringIO("".join(f"{line}\n" for line in lines)), out)
    return out.getvalue()


def test_a_transfer_complaint_is_guided_to_a_claimed_case_with_confirmed_steps(assistant):
    out = run(assistant, ["客户说货转给外协以后就查不到了，很着急，窗口还让他自己打外协电话",
                          "13800138000", "12345678", "完成了", "还没有"])
    # What to say: the manual's answer point, which already knows nothing of a phone yet.
    assert "🗣 对客户说：\n  您好，因系统无法查询该转货的详细情况，请您留下您的联系方式" in out
    assert "✍️ 请记录：联系电话" in out and "✍️ 请记录：运单号" in out
    # The rule that matters in a transfer, where it applies, once.
    assert out.count("不推诿，发现异常立即处理——") == 1
    assert "📋 要做：\n  1. 客服专员（" in out and "2. 中转外协窗口（上一步到期未办结时，12 个工作小时内）" in out
    assert "现在这一步是第1步（客服专员）：您已经按这一步处理了吗？" in out and "已记录：第1步已处理。" in out
    assert "客户的问题当场解决了吗？" in out and "保持处理中，当前期限" in out
    assert out.rstrip().endswith("交接——交班前把未办结的案件交接清楚：进度、下一步、答应客户的时间。")

    with assistant.service.store.session() as db:
        case = db.exec(select(CaseRow)).one()
        assert (case.category, case.waybill, case.contact, case.assigned_to) == ("transfer", "12345678", "13800138000", STAFF)
        conv = db.get(ConversationRow, case.conversation_id)
        assert conv.channel == "assist" and conv.user_key.startswith(f"{STAFF}:")
        events = [(e.kind, e.data) for e in db.exec(select(EventRow).where(EventRow.case_number == case.number)
                                                    .order_by(EventRow.id))]
        assert [k for k, _ in events] == ["case_opened", "conversation_closed", "case_claimed", "step_confirmed"]
        assert events[-1][1] == {"staff": STAFF, "step": 0}
        assert db.get(StaffModeRow, STAFF) is None  # the session is over


def test_rules_are_brief_never_a_wall(assistant):
    out = run(assistant, ["客户说运费太贵了，比别家贵很多", "没有", "13800138000", "还没有"])
    blocks = out.split("📌 原则：\n")[1:]
    for block in blocks:
        rules = [line for line in block.splitlines() if line.startswith("  ") and "——" in line]
        assert 1 <= len(rules) <= assistant.assist.rules_per_step
    assert "兼顾集团与客户利益——" in out  # pricing's own rule comes with its answer point


def test_a_menu_number_and_no_waybill_are_understood_and_a_case_solved_on_the_spot_is_closed(assistant):
    out = run(assistant, ["13", "没有", "厦门发福州，发货人张三", "13800138000", "好的", "1", "是"])
    assert "✍️ 请记录：货物信息（无运单号）" in out
    assert "请回答“是”或“还没有”" not in out  # 好的 is an acknowledgement, not a yes: it went to the flow
    assert "已办结。" in out
    with assistant.service.store.session() as db:
        case = db.exec(select(CaseRow)).one()
        assert (case.category, case.assigned_to, case.waybill, case.status) == ("tracking", STAFF, None, "closed")
        assert len(db.exec(select(EventRow).where(EventRow.kind == "step_confirmed")).all()) == 1


def test_what_staff_say_on_a_live_call_is_understood(assistant):
    """From the probe of 45 live calls: a person asked for, a corrected waybill, a question at the
    options, 客户说 in front, a second complaint after the case, blank lines."""
    out = run(assistant, ["转人工", "13800138000", "还没有"])  # used to crash: the handoff is a case kind too
    assert "已建立，由您跟进" in out and "请在" in out
    out = run(assistant, ["客户说收到货箱子破了", "单号12312312", "不对，单号是32132132", "", "13312345678",
                          "外箱压扁了，里面两台电机摔坏", "2", "还没有"])
    assert "没有收到内容" in out
    with assistant.service.store.session() as db:
        cases = db.exec(select(CaseRow).order_by(CaseRow.id)).all()
        assert cases[0].category == "handoff" and cases[0].assigned_to == STAFF
        assert (cases[1].category, cases[1].waybill) == ("wrong_or_damaged", "32132132")
    out = run(assistant, ["司机不给搬上楼", "要不要收费？"])
    assert "搬运费由配送车队按楼层、件数和重量报价" in out and "请问您需要办理搬运增值服务吗？" in out
    out = run(assistant, ["客户说货三天没发，而且上次的理赔到现在还没赔", "1", "44332211", "3", "13800138000",
                          "好的", "44332299", "13800138000", "是", "还没有"])
    assert "又建立了案件" in out
    with assistant.service.store.session() as db:
        assert [c.category for c in db.exec(select(CaseRow).order_by(CaseRow.id))][-2:] == ["claim_dissatisfied", "stranded"]


def test_unclear_answers_to_a_step_are_asked_again_and_the_end_word_leaves(assistant):
    guide = assistant.start(STAFF)
    assert assistant.active(STAFF) and "1. 服务态度问题" in guide.text(assistant.assist, assistant.engine.zone)
    for line in ["客户说货转外协后查不到", "13800138000", "12345678"]:
        guide = assistant.take(STAFF, Inbound(text=line))
    assert guide.question == "现在这一步是第1步（客服专员）：您已经按这一步处理了吗？"
    guide = assistant.take(STAFF, Inbound(text="嗯？这个怎么算"))  # not a yes: kefu answers it as the customer's
    assert guide.question == "现在这一步是第1步（客服专员）：您已经按这一步处理了吗？"
    guide = assistant.take(STAFF, Inbound(text="结束"))
    assert guide.ended and not assistant.active(STAFF)
    with pytest.raises(KeyError):
        assistant.take(STAFF, Inbound(text="还在吗"))


def test_leaving_before_a_case_says_none_was_opened(assistant):
    out = run(assistant, ["客户说司机不给搬上楼", "/quit"])
    assert "坐席助手已结束。" in out and "本次没有建立案件。" in out
    with assistant.service.store.session() as db:
        assert db.exec(select(CaseRow)).all() == []


def test_kefu_assist_refuses_someone_who_is_not_staff_and_runs_for_staff(sqlite_url):
    env = {**os.environ, "KEFU_DATABASE_URL": sqlite_url}
    refused = subprocess.run([sys.executable, "-m", "bot", "assist", "--staff", "5"], input="", capture_output=True,
                             text=True, env=env, timeout=120)
    assert refused.returncode != 0 and "5 is not staff: kefu staff add 5" in refused.stderr
    subprocess.run([sys.executable, "-m", "bot", "staff", "add", "5"], env=env, check=True, capture_output=True, timeout=120)
    ran = subprocess.run([sys.executable, "-m", "bot", "assist", "--staff", "5"], input="4\n13800138000\n12345678\n2\n",
                         capture_output=True, text=True, env=env, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert "案件 KF-" in ran.stdout and "已建立，由您跟进。" in ran.stdout


def test_a_broken_assistant_file_names_file_line_and_field(tmp_path, content):
    folder = tmp_path / "scripts_yaml"
    shutil.copytree(ROOT / "scripts_yaml", folder)
    path = folder / "staff" / "assist.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("transfer: [no_buck_passing]", "transfer: [no_passing]")
                    .replace("opened: {text: \"案件 {{ number }}", "opened: {text: \"案件 {{ numbr }}"), encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_assist(folder, set(content.categories))
    shown = [str(p) for p in caught.value.problems]
    assert any("assist.yaml:" in p and "categories.transfer[0]: unknown rule 'no_passing'" in p for p in shown), shown
    assert any("texts.opened.text: unknown name(s) numbr" in p for p in shown), shown


def test_a_broken_staff_telegram_file_names_file_line_and_field(tmp_path):
    from bot.staff_texts import load_staff_texts

    folder = tmp_path / "scripts_yaml"
    shutil.copytree(ROOT / "scripts_yaml", folder)
    path = folder / "staff" / "telegram.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace('claimed: "✅ {{ who }} 已认领"', 'claimed: "✅ {{ whom }} 已认领"')
                    .replace("  new_case: 🆕 新案件\n", ""), encoding="utf-8")
    with pytest.raises(ContentError) as caught:
        load_staff_texts(folder)
    shown = [str(p) for p in caught.value.problems]
    assert any("telegram.yaml:" in p and "headers.new_case: missing required field" in p for p in shown), shown
    assert any("headers.claimed: unknown name(s) whom" in p for p in shown), shown
