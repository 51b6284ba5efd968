"""Training results (/training): each trainee's sessions and scores over time, and one session read
with its scoring (/training/<id>). Staff see only their own sessions (trainee name = user name)."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.practice import KINDS
from bot.storage import queries
from bot.web import auth
from bot.web.charts import polyline
from bot.web.templating import page


async def list_sessions(request: Request) -> Response:
    """Shows every trainee's sessions with a line of their scores."""
    user = auth.require(request)
    with request.app.state.service.store.reading() as session:
        trainees = queries.training_sessions(session, user.scope())
    lines = {name: polyline([row.score for row in rows]) for name, rows in trainees.items()}
    return page(request, "training.html", trainees=trainees, lines=lines)


async def show_session(request: Request) -> Response:
    """Shows one session: each customer line, the trainee's reply, its score and checks."""
    user = auth.require(request)
    try:
        session_id = int(request.path_params["session_id"])
    except ValueError:
        raise HTTPException(404)
    with request.app.state.service.store.reading() as session:
        row = queries.training_session(session, session_id, user.scope())
    if row is None:
        raise HTTPException(404)
    return page(request, "training_session.html", row=row, kinds=KINDS)


routes = [
    Route("/training", list_sessions, methods=["GET"]),
    Route("/training/{session_id}", show_session, methods=["GET"]),
]
