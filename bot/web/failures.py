"""Failed updates (/failures): the Telegram updates whose handling failed, and a button that puts one
back in the inbox as pending, so the bot handles it again (supervisors and admins only)."""

from __future__ import annotations

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot import queries
from bot.store import Inbox
from bot.supervision import SEE_ALL
from bot.web import auth
from bot.web.templating import page


def summary(data: dict) -> tuple[str, str]:
    """Who sent an update and what it said (a message's text or caption, or a button's data)."""
    message = data.get("message") or data.get("edited_message") or {}
    query = data.get("callback_query") or {}
    sender = (message.get("from") or query.get("from") or {}).get("id", "")
    said = message.get("text") or message.get("caption") or query.get("data") or "（非文字消息）"
    return str(sender), said


async def list_failures(request: Request) -> Response:
    """Shows the failed updates with their error."""
    auth.require(request, *SEE_ALL)
    with Session(request.app.state.db) as session:
        rows = queries.failed_updates(session)
    return page(request, "failures.html", rows=[(row, *summary(row.data)) for row in rows])


async def retry(request: Request) -> Response:
    """Puts a failed update back in the inbox for the bot to handle again."""
    user = auth.require(request, *SEE_ALL)
    await auth.checked_form(request)
    update_id = int(request.path_params["update_id"])
    done = Inbox(request.app.state.db).retry(update_id, by=user.name)
    request.session["flash"] = (f"更新 {update_id} 已放回收件箱，Telegram 机器人会重新处理" if done
                                else f"更新 {update_id} 不是失败状态，未改动")
    return RedirectResponse("/failures", status_code=303)


routes = [
    Route("/failures", list_failures, methods=["GET"]),
    Route("/failures/{update_id:int}/retry", retry, methods=["POST"]),
]
