"""The one Jinja environment of the supervisor pages (autoescape on: whatever a customer wrote is shown
as text), its filters, and page(), which renders a template with what every page needs."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from bot.logs import mask_phones
from bot.storage.tables import aware
from bot.web import auth

TEMPLATES = Path(__file__).parent / "templates"
STATUS_NAMES = {"open": "处理中", "closed": "已办结"}
MARK_NAMES = {"note": "备注", "tag": "标签", "reviewed": "已复核", "flag": "标记消息"}
EVENT_NAMES = {
    "case_opened": "立案", "step_escalated": "升级到下一步", "case_claimed": "客服认领", "staff_replied": "客服回复客户",
    "deadline_reminded": "超时提醒", "deadline_missed_at_top": "最后一步超时，已通知主管", "case_closed": "办结",
    "case_rated": "客户评分", "rating_reason": "差评原因", "case_reassigned": "改派", "case_note": "主管备注",
    "case_tag": "加标签", "case_reviewed": "主管复核", "case_flag": "标记消息", "attachment_received": "收到证据",
    "relayed_to_staff": "客户留言转给客服", "human_requested": "客户要求人工", "case_facts_corrected": "客户更正信息",
    "conversation_closed": "对话结束", "conversation_cancelled": "客户取消", "handed_over": "转人工",
    "rating_requested": "请客户评分", "send_failed": "消息发送失败", "topic_changed": "客户换了话题",
}

environment = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                                 undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)


def local_time(moment: datetime | str | None, zone, with_seconds: bool = False) -> str:
    """A stored time (or an event's ISO time) in the content's time zone."""
    if moment is None:
        return "—"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return aware(moment).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S" if with_seconds else "%Y-%m-%d %H:%M")


def page(request: Request, template: str, status_code: int = 200, **values) -> HTMLResponse:
    """Renders a page for the signed-in user (if any): their name and role, the form token, and
    shown(), which masks phone numbers for readers who do not need them."""
    state = request.app.state
    user = auth.signed_in(request)

    def shown(text: str | None) -> str:
        text = "" if text is None else str(text)
        return text if user is not None and user.sees_all else mask_phones(text)

    def category_name(cid: str) -> str:
        kind = state.content.case_kinds.get(cid)
        return kind.name if kind else cid

    def role_name(rid: str) -> str:
        role = state.content.shared.roles.get(rid)
        return role.name if role else rid

    html = environment.get_template(template).render(
        request=request, user=user, csrf_field=auth.CSRF_FIELD, csrf=auth.csrf_token(request), shown=shown,
        when=lambda moment, seconds=False: local_time(moment, state.zone, seconds), category_name=category_name,
        role_name=role_name, status_names=STATUS_NAMES, mark_names=MARK_NAMES, event_names=EVENT_NAMES,
        flash=request.session.pop("flash", None), **values)
    return HTMLResponse(html, status_code=status_code)
