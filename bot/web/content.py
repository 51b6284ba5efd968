"""The content as shipped (/content): each category's texts, each marked as the manual's (手册) or our
draft (草稿), its handling steps, and its state machine drawn from the engine's own machine."""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from dialogs.content import texts_in
from bot.web import auth
from bot.web.diagram import layout
from bot.web.templating import page

SHARED = "shared"  # shared.yaml's texts, shown like a category's


def _where(path: tuple) -> str:
    return " › ".join(str(part) for part in path)


async def list_content(request: Request) -> Response:
    """Lists the categories with how many of their texts are the manual's and how many drafts."""
    auth.require(request)
    content = request.app.state.content
    counts = {}
    for cid, obj in [*content.categories.items(), (SHARED, content.shared)]:
        texts = [text for _, text in texts_in(obj)]
        counts[cid] = (sum(t.provenance.value == "manual" for t in texts), sum(t.provenance.value == "draft" for t in texts))
    return page(request, "content.html", categories=content.categories, counts=counts, shared=SHARED)


async def show_category(request: Request) -> Response:
    """Shows one category's texts with their origin, its handling steps and its state machine."""
    auth.require(request)
    state = request.app.state
    cid = request.path_params["category"]
    content = state.content
    if cid == SHARED:
        texts = [(_where(path), text) for path, text in texts_in(content.shared)]
        return page(request, "content_category.html", cid=cid, category=None, texts=texts, diagram=None)
    category = content.categories.get(cid)
    if category is None:
        raise HTTPException(404)
    texts = [(_where(path), text) for path, text in texts_in(category)]
    diagram = layout(state.service.engine.machines[cid], category)
    return page(request, "content_category.html", cid=cid, category=category, texts=texts, diagram=diagram)


routes = [
    Route("/content", list_content, methods=["GET"]),
    Route("/content/{category}", show_category, methods=["GET"]),
]
