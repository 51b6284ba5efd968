"""The content pages: every text with its origin, and each category's state machine drawn from the
engine's own machine."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from bot.config import Settings
from bot.service import Service
from bot.web import auth
from bot.web.app import create_app
from bot.web.diagram import layout
from dialogs.content import texts_in


def test_the_diagram_has_every_state_and_transition_of_the_engines_machine(content):
    service = Service.from_settings(Settings(database_url="sqlite://"))
    for cid, category in content.categories.items():
        machine = service.engine.machines[cid]
        drawn = layout(machine, category)
        assert [n.name for n in drawn.nodes] == list(machine.states)
        moves = [t for e in machine.events.values() for ts in e.transitions.values() for t in ts]
        assert len(drawn.edges) == len(moves), cid
        assert all(0 <= n.x <= drawn.width and 0 <= n.y <= drawn.height for n in drawn.nodes)
    pricing = layout(service.engine.machines["pricing"], content.categories["pricing"])
    options = [o.label for o in content.categories["pricing"].flow.states["answer"].options]
    assert {e.label for e in pricing.edges if e.label} == {label if len(label) <= 10 else label[:9] + "…" for label in options}
    assert {n.name: n.notes for n in pricing.nodes}["open"] == "立案"


def test_the_content_pages_mark_every_text_manual_or_draft(sqlite_url, content):
    service = Service.from_settings(Settings(database_url=sqlite_url))
    auth.add_user(service.store.db, "amy", "staff", "amy-password")
    client = TestClient(create_app(service), follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"csrf_token": token, "name": "amy", "password": "amy-password", "next": "/"})
    listing = client.get("/content").text
    for category in content.categories.values():
        assert category.name in listing
    page = client.get("/content/pricing").text
    texts = list(texts_in(content.categories["pricing"]))
    assert page.count('<tr class="manual">') == sum(t.provenance.value == "manual" for _, t in texts) > 0
    assert page.count('<tr class="draft">') == sum(t.provenance.value == "draft" for _, t in texts) > 0
    assert page.count('class="state"') == len(service.engine.machines["pricing"].states)
    assert client.get("/content/shared").status_code == 200
    assert client.get("/content/nothing").status_code == 404
