"""What a supervisor's Telegram shortcuts answer: /cases (the open cases, overdue first) and /case <number>
(a case's summary and its last messages), as plain text read through bot/storage/queries.py."""

from __future__ import annotations

from datetime import datetime, tzinfo

from sqlmodel import Session

from bot.storage import queries
from bot.storage.tables import aware
from dialogs.content import Content

LISTED = 20  # cases listed by /cases; the supervisor pages list them all
LAST_MESSAGES = 5
CUT = 80  # characters of a message shown


def _when(moment: datetime, zone: tzinfo) -> str:
    return aware(moment).astimezone(zone).strftime("%m月%d日 %H:%M")


def _cut(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= CUT else text[: CUT - 1] + "…"


def open_cases(session: Session, content: Content, zone: tzinfo, now: datetime) -> str:
    """The open cases, overdue ones first, one line each."""
    overdue = queries.case_page(session, queries.CaseFilter(overdue=True), 1, zone, now, per_page=LISTED)
    open_ = queries.case_page(session, queries.CaseFilter(status="open"), 1, zone, now, per_page=LISTED)
    if not open_.total:
        return "目前没有处理中的案件。"
    lines = [f"处理中 {open_.total} 件，其中超时 {overdue.total} 件："]
    shown = {c.number for c in overdue.cases}
    for case in [*overdue.cases, *(c for c in open_.cases if c.number not in shown)][:LISTED]:
        kind = content.case_kinds.get(case.category)
        role = content.shared.roles.get(case.step_role)
        mark = "⚠️超时 " if case.number in shown else ""
        lines.append(f"{mark}{case.number} {kind.name if kind else case.category} 第{case.step + 1}步 "
                     f"{role.name if role else case.step_role} 期限 {_when(case.step_deadline, zone)}")
    if open_.total > LISTED:
        lines.append(f"……另有 {open_.total - LISTED} 件，请在主管页面查看。")
    return "\n".join(lines)


def case_summary(session: Session, number: str, content: Content, zone: tzinfo) -> str | None:
    """A case's summary and last messages; None when there is no such case."""
    detail = queries.case_detail(session, number)
    if detail is None:
        return None
    case = detail.case
    kind = content.case_kinds.get(case.category)
    role = content.shared.roles.get(case.step_role)
    lines = [f"案件 {case.number}｜{kind.name if kind else case.category}｜{'处理中' if case.status == 'open' else '已办结'}"]
    for fid, value in case.facts.items():
        fact = kind.facts.get(fid) if kind else None
        lines.append(f"{fact.label if fact else fid}：{_cut(str(value))}")
    lines.append(f"第{case.step + 1}步 {role.name if role else case.step_role}，期限 {_when(case.step_deadline, zone)}")
    lines.append(f"跟进人：{case.assigned_to or '未认领'}" + (f"｜评分 {case.rating}/5" if case.rating else ""))
    lines.append("最近的消息：")
    for message in detail.messages[-LAST_MESSAGES:]:
        who = "客户" if message.direction == "in" else ("客服" if message.staff_id else "机器人")
        lines.append(f"{_when(message.at, zone)} {who}：{_cut(message.text)}")
    return "\n".join(lines)
