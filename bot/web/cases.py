"""The case list (/cases, filtered, searched and paged) and one case (/cases/<number>): transcript, facts,
handling steps and timeline, evidence, rating; and the supervisors' actions on it, each one a
casework call, the same that Telegram's staff buttons make."""

from __future__ import annotations

from datetime import date
from urllib.parse import quote, urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.approved import NotApprovable, approved_yaml
from bot.casework import CaseworkError
from bot.storage import queries
from bot.storage.tables import utcnow
from bot.supervision import SEE_ALL
from bot.web import auth
from bot.web.templating import page


def _date(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text else None
    except ValueError:
        return None


def case_filter(params, categories, places=()) -> queries.CaseFilter:
    """The filter the list's form asks for; values that make no sense are left out rather than refused."""
    return queries.CaseFilter(
        category=params.get("category") if params.get("category") in categories else None,
        status=params.get("status") if params.get("status") in ("open", "closed") else None,
        overdue=params.get("overdue") == "1",
        opened_from=_date(params.get("from")), opened_to=_date(params.get("to")),
        assigned_to=_int(params.get("assignee")), search=(params.get("q") or "")[:200],
        place=params.get("place") if params.get("place") in places else None,
    )


async def list_cases(request: Request) -> Response:
    """Shows one page of the cases that match the filters."""
    user = auth.require(request)
    state = request.app.state
    places = state.content.shared.routing.places
    chosen = case_filter(request.query_params, state.content.case_kinds, places)
    now = utcnow()
    with state.service.store.reading() as session:
        found = queries.case_page(session, chosen, _int(request.query_params.get("page")) or 1, state.zone, now,
                                  user.scope())
    kept = {k: v for k, v in request.query_params.items() if k != "page" and v}
    return page(request, "cases.html", found=found, chosen=chosen, now=now, is_overdue=queries.is_overdue,
                kinds=state.content.case_kinds, query=kept, places=places,
                page_link=lambda n: "/cases?" + urlencode({**kept, "page": n}))


async def show_case(request: Request) -> Response:
    """Shows one case whole."""
    user = auth.require(request)
    state = request.app.state
    number = request.path_params["number"]
    with state.service.store.reading() as session:
        detail = queries.case_detail(session, number, user.scope())
        staff = queries.all_staff(session) if user.sees_all else []
    if detail is None:
        raise HTTPException(404)
    kind = state.content.case_kinds.get(detail.case.category)
    return page(request, "case.html", detail=detail, case=detail.case, kind=kind, staff=staff,
                labels=state.content.shared.handoff.fact_labels,  # facts any case may hold (客户补充)
                overdue=queries.is_overdue(detail.case, utcnow()),
                flags={m.id: [f for f in detail.marks if f.message_id == m.id]
                       for m in detail.messages})


def _act(casework, verb: str, number: str, user: auth.User, form) -> str:
    """Does one supervisor action through casework; returns what to tell the supervisor."""
    text = str(form.get("text", ""))
    if verb == "note":
        casework.note(number, user.name, text)
        return "已添加备注"
    if verb == "tag":
        casework.tag(number, user.name, text)
        return "已添加标签"
    if verb == "review":
        casework.mark_reviewed(number, user.name, text)
        return "已标记为已复核"
    if verb == "flag":
        message = _int(str(form.get("message", "")))
        if message is None:
            raise CaseworkError("没有指明要标记的消息")
        casework.flag_message(number, message, user.name, text)
        return "已标记这条消息"
    if verb == "reassign":
        staff_id = _int(str(form.get("staff", "")))
        if staff_id is None:
            raise CaseworkError("请选择要改派的客服")
        casework.reassign(number, staff_id, user.name)
        return f"已改派给 {staff_id}"
    if verb == "escalate":
        card = casework.escalate(number, user.telegram_id, by=user.name)
        return f"已升级到第{card.step}步（{card.role_name}）"
    if verb == "close":
        casework.resolve(number, user.telegram_id, by=user.name)
        return "案件已办结"
    raise HTTPException(404)


async def act(request: Request) -> Response:
    """Does a supervisor's action on a case and shows the case again with what happened."""
    user = auth.require(request, *SEE_ALL)
    form = await auth.checked_form(request)
    number = request.path_params["number"]
    if request.path_params["verb"] == "approve":
        return _approved(request, number, user)
    try:
        message = _act(request.app.state.casework, request.path_params["verb"], number, user, form)
    except CaseworkError as exc:
        message = f"未完成：{exc}"
    request.session["flash"] = message
    return RedirectResponse(f"/cases/{quote(number)}", status_code=303)


def _approved(request: Request, number: str, user: auth.User) -> Response:
    """The case's conversation as a regression test file (tests/data/approved/<number>.yaml), recorded
    on the case as reviewed: the maintainer adds the file and the suite replays it from then on."""
    state = request.app.state
    try:
        text = approved_yaml(state.service.store, number, user.name, state.zone)
    except NotApprovable as exc:
        request.session["flash"] = f"未完成：{exc}"
        return RedirectResponse(f"/cases/{quote(number)}", status_code=303)
    state.casework.mark_reviewed(number, user.name, "已保存为回归测试")
    return Response(text, media_type="application/x-yaml",
                    headers={"content-disposition": f'attachment; filename="{number}.yaml"'})


routes = [
    Route("/cases", list_cases, methods=["GET"]),
    Route("/cases/{number}", show_case, methods=["GET"]),
    Route("/cases/{number}/{verb}", act, methods=["POST"]),
]
