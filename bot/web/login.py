"""Signing in and out."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from bot.web import auth
from bot.web.templating import page


def _local(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another site's address)."""
    return target if target and target.startswith("/") and not target.startswith("//") and "\\" not in target else "/"


async def show(request: Request) -> Response:
    """Shows the sign-in form."""
    return page(request, "login.html", next=_local(request.query_params.get("next")), error=None)


async def submit(request: Request) -> Response:
    """Signs the user in, or shows the form again with the reason."""
    form = await auth.checked_form(request)
    user = auth.authenticate(request.app.state.db, str(form.get("name", "")), str(form.get("password", "")))
    target = _local(str(form.get("next", "")))
    if user is None:
        return page(request, "login.html", status_code=400, next=target, error="用户名或密码不正确")
    auth.sign_in(request, user)
    return RedirectResponse(target, status_code=303)


async def sign_out(request: Request) -> Response:
    """Ends the session."""
    await auth.checked_form(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


routes = [
    Route("/login", show, methods=["GET"]),
    Route("/login", submit, methods=["POST"]),
    Route("/logout", sign_out, methods=["POST"]),
]
