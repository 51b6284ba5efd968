"""The dashboard (/): open and overdue cases, cases per category this week and this month, the time to
close and the customers' satisfaction, in the reader's scope."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.storage import queries
from bot.storage.tables import utcnow
from bot.web import auth
from bot.web.charts import ROW, bars
from bot.web.templating import page


async def show(request: Request) -> Response:
    """Shows the dashboard."""
    user = auth.require(request)
    state = request.app.state
    with state.service.store.reading() as session:
        figures = queries.dashboard(session, state.zone, utcnow(), user.scope())

    def named(counts: dict[str, int]):
        kinds = state.content.case_kinds
        return bars([(kinds[c].name if c in kinds else c, n) for c, n in counts.items()])

    return page(request, "dashboard.html", figures=figures, week=named(figures.week), month=named(figures.month), row=ROW)


routes = [Route("/", show, methods=["GET"])]
