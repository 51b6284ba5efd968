"""A damage claim end to end: filed with its evidence, handed over from wrong_or_damaged, and its
progress asked for by case number in a later conversation."""

from __future__ import annotations

from sqlalchemy import create_engine
from sqlmodel import Session, select

from bot.storage.tables import CaseRow
from test_chat import kefu_chat

CLAIM = ["申请货损货差理赔", "12345678", "13800138000", "1", "外箱破损，里面两台显示器屏幕碎了", "只保灭失险",
         "两台显示器，价值约6000元", "1", "已拍外箱和破损部位", "有发票/清单"]


def only_case(url: str) -> CaseRow:
    with Session(create_engine(url)) as session:
        return session.exec(select(CaseRow)).one()


def test_claim_is_filed_with_its_evidence_and_explains_loss_only_cover(sqlite_url):
    out = kefu_chat(CLAIM, "claimant", sqlite_url)
    assert "易碎、易潮湿、易污染或包装不合格的货物只保灭失险" in out  # the manual's rule, explained honestly
    assert "已为您登记，案件编号" in out
    case = only_case(sqlite_url)
    assert (case.category, case.step_role, case.waybill, case.contact) == ("claims", "customer_service", "12345678", "13800138000")
    assert case.facts == {
        "waybill": "12345678", "phone": "13800138000", "what": "货物破损", "details": "外箱破损，里面两台显示器屏幕碎了",
        "insured": "只保灭失险", "amount": "两台显示器，价值约6000元", "signed": "已签收，签收单上注明了问题",
        "photos": "已拍外箱和破损部位", "proof": "有发票/清单",
    }


def test_progress_is_asked_by_case_number_in_a_later_conversation(sqlite_url):
    kefu_chat(CLAIM, "claimant", sqlite_url)
    number = only_case(sqlite_url).number
    # 查询 alone tells the customer's open case (probe 9, C57: the number just issued is not asked for)
    later = kefu_chat(["查询"], "claimant", sqlite_url)
    assert "请发送您的案件编号" not in later
    assert f"案件 {number}（货损货差理赔）：处理中。客服专员正在核实处理您的问题，预计" in later
    later = kefu_chat([number], "claimant", sqlite_url)
    assert f"案件 {number}（货损货差理赔）：处理中。客服专员正在核实处理您的问题，预计" in later
    stranger = kefu_chat([f"查询 {number}"], "stranger", sqlite_url)
    assert f"没有查到您名下编号为 {number} 的案件" in stranger
    assert "处理中" not in stranger


def test_wrong_or_damaged_hands_over_to_claims_without_asking_again(sqlite_url):
    start = ["发错货、货物破损或短少", "66668888", "13900001111", "2", "少了两箱"]
    out = kefu_chat(start, "damaged", sqlite_url)
    claim_option = next(line for line in out.splitlines() if "我要申请理赔" in line).split(".")[0].strip()
    out = kefu_chat([claim_option, "未保价", "大概2000元", "3", "还没拍", "没有"], "damaged", sqlite_url)
    assert "您已经提供的信息不用重复填写" in out
    assert "请提供您的运单号" not in out
    case = only_case(sqlite_url)
    assert case.category == "claims"
    assert (case.waybill, case.facts["what"], case.facts["details"], case.facts["insured"]) == ("66668888", "货物短少（少件）", "少了两箱", "未保价")
