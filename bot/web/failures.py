"""Failed updates (/failures): the Telegram updates whose handling failed, waiting for their next try or
dead-lettered, with their error; Retry sends one back to be tried once more now, as `kefu inbox --retry`
does (supervisors and admins only; audited)."""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot import audit
from bot.storage import queries
from bot.storage.engine import reading
from bot.storage.inbox import Inbox
from bot.supervision import SEE_ALL
from bot.web import auth
from bot.web.templating import page

STATUS_NAMES = {"retry": "等待重试", "dead": "已停止重试"}


def summary(data: dict) -> tuple[str, str]:
    """Who sent an update and what it said (a message's text or caption, or a button's data)."""
    message = data.get("message") or data.get("edited_message") or {}
    query = data.get("callback_query") or {}
    sender = (message.get("from") or query.get("from") or {}).get("id", "")
    said = message.get("text") or message.get("caption") or query.get("data") or "（非文字消息）"
    return str(sender), said


async def list_failures(request: Request) -> Response:
    """Shows the failed updates with their error and where their retries stand."""
    auth.require(request, *SEE_ALL)
    with reading(request.app.state.db) as session:
        rows = queries.failed_updates(session)
    return page(request, "failures.html", rows=[(row, *summary(row.data)) for row in reversed(rows)],
                failure_status=STATUS_NAMES)


async def retry(request: Request) -> Response:
    """Sends a failed update back to be tried once more by the running bot."""
    user = auth.require(request, *SEE_ALL)
    await auth.checked_form(request)
    update_id = int(request.path_params["update_id"])
    db = request.app.state.db
    done = Inbox(db).retry(update_id)
    if done:
        with Session(db) as session, session.begin():
            audit.record(session, "update_retry", str(update_id), {}, who=f"web:{user.name}")
    request.session["flash"] = (f"更新 {update_id} 已安排立即重试，Telegram 机器人会重新处理" if done
                                else f"更新 {update_id} 不在失败列表中，未改动")
    return RedirectResponse("/failures", status_code=303)


routes = [
    Route("/failures", list_failures, methods=["GET"]),
    Route("/failures/{update_id:int}/retry", retry, methods=["POST"]),
]
