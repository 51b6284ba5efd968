"""The supervisor pages' ASGI app: its routes (one module per page), the signed session cookie, the
security headers, and what a refused or unknown request gets. Another page joins by adding its
module's routes to PAGES."""

from __future__ import annotations

from datetime import timedelta

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send
from urllib.parse import quote

from bot.casework import Casework
from bot.service import Service
from bot.web import auth, cases, content, dashboard, drafts, failures, login, reports, training
from bot.web.templating import page

PAGES = [login, dashboard, cases, training, failures, content, reports, drafts]

# Nothing on these pages runs script or loads from elsewhere: if escaping ever failed, the browser
# still would not run what a customer wrote.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                                 b"form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cache-control", b"no-store"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        await self.app(scope, receive, with_headers if scope["type"] == "http" else send)


async def _sign_in_first(request: Request, exc: Exception) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def _forbidden(request: Request, exc: Exception) -> Response:
    return page(request, "error.html", status_code=403, title="无权访问", message=str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = {404: "没有这个页面或案件", 405: "不支持这种请求"}.get(exc.status_code, exc.detail)
    return page(request, "error.html", status_code=exc.status_code, title=str(exc.status_code), message=message)


def create_app(service: Service, grace: timedelta = timedelta(hours=2)) -> Starlette:
    """The supervisor pages over this service's content and database."""
    db = service.store.db
    app = Starlette(
        routes=[route for module in PAGES for route in module.routes],
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(SessionMiddleware, secret_key=auth.session_key(db), session_cookie="kefu_session",
                       max_age=auth.SESSION_SECONDS, same_site="strict"),
        ],
        exception_handlers={auth.NotSignedIn: _sign_in_first, auth.Forbidden: _forbidden, HTTPException: _http_error},
    )
    app.state.service = service
    app.state.db = db
    app.state.content = service.content
    app.state.zone = service.engine.zone
    app.state.casework = Casework(service, grace)
    return app
