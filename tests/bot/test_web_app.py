"""The supervisor pages' guards, in process (Starlette's test client): every form needs its token, every
page a sign-in, sign-ins expire, and the pages forbid script."""

from __future__ import annotations

import json
import re
import time
from base64 import b64encode
from datetime import timedelta

import pytest
from itsdangerous import TimestampSigner
from starlette.routing import Route
from starlette.testclient import TestClient

from bot.config import Settings
from bot.service import Service
from bot.storage import queries
from bot.storage.inbox import Inbox
from bot.web import auth
from bot.web.app import create_app
from dialogs.conversation import Inbound


@pytest.fixture
def app(sqlite_url):
    service = Service.from_settings(Settings(database_url=sqlite_url))
    for line in ["货物滞留", "12345678", "13800138000"]:
        service.receive("telegram", "9001", Inbound(text=line))
    auth.add_user(service.store.db, "lily", "supervisor", "lily-password")
    return create_app(service)


def signed_in_client(app) -> TestClient:
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    answer = client.post("/login", data={"csrf_token": token, "name": "lily", "password": "lily-password", "next": "/"})
    assert answer.status_code == 303 and answer.headers["location"] == "/"
    return client


def test_every_form_refuses_a_post_without_its_token(app):
    client = signed_in_client(app)
    number = re.search(r"KF-\d{8}-\d{4}", client.get("/cases").text).group(0)  # the case opened today
    posts = [r.path for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or ())]
    assert {"/login", "/logout", "/cases/{number}/{verb}", "/failures/{update_id:int}/retry"} <= set(posts)
    for path in posts:
        concrete = path.replace("{number}", number).replace("{verb}", "close").replace("{update_id:int}", "1")
        refused = client.post(concrete, data={"text": "x", "name": "lily", "password": "lily-password"})
        assert refused.status_code == 403, path
        assert "表单已失效或来源不明" in refused.text
    assert client.get(f"/cases/{number}").status_code == 200  # the refused close did nothing
    assert "处理中" in client.get(f"/cases/{number}").text


def test_every_page_needs_a_sign_in(app):
    client = TestClient(app, follow_redirects=False)
    for path in ["/", "/cases", "/cases/KF-20261202-0001", "/training", "/training/1", "/failures"]:
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next="), path


def test_a_sign_in_expires_after_its_time_even_when_renewed(app):
    client = signed_in_client(app)
    assert client.get("/").status_code == 200
    key = auth.session_key(app.state.db)
    old = {"user": "lily", "since": int(time.time()) - auth.SESSION_SECONDS - 60, "csrf_token": "t"}
    client.cookies.set("kefu_session", TimestampSigner(key).sign(b64encode(json.dumps(old).encode())).decode())
    answer = client.get("/")
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login")
    forged = TimestampSigner("another key").sign(b64encode(json.dumps({**old, "since": int(time.time())}).encode()))
    client.cookies.set("kefu_session", forged.decode())
    assert client.get("/").status_code == 303  # a cookie signed with another key is no sign-in


def test_sign_in_goes_only_to_this_site(app):
    client = TestClient(app, follow_redirects=False)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    for target in ["https://evil.example/", "//evil.example/", "/\\evil.example"]:
        answer = client.post("/login", data={"csrf_token": token, "name": "lily", "password": "lily-password",
                                             "next": target})
        assert answer.headers["location"] == "/", target
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)


def test_pages_forbid_script_and_framing(app):
    answer = signed_in_client(app).get("/cases")
    policy = answer.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy and "frame-ancestors 'none'" in policy
    assert answer.headers["x-content-type-options"] == "nosniff"


def test_a_failed_update_is_listed_with_its_error_and_retried(app):
    inbox = Inbox(app.state.db)
    data = {"update_id": 77, "message": {"text": "运单 12345678 电话13800138000", "from": {"id": 9001}}}
    inbox.add(77, data)
    assert inbox.fail(77, "RuntimeError: the engine broke", attempts=1, first_wait=timedelta(seconds=10)) == "dead"
    client = signed_in_client(app)
    listed = client.get("/failures").text
    assert "RuntimeError: the engine broke" in listed and "运单 12345678 电话13800138000" in listed
    assert "已停止重试（已失败 1 次）" in listed
    token = re.search(r'name="csrf_token" value="([^"]+)"', listed).group(1)
    assert client.post("/failures/77/retry", data={"csrf_token": token}).status_code == 303
    assert "已安排立即重试" in client.get("/failures").text
    assert inbox.due() == [data]  # the running bot takes it at its next retry check
    with app.state.service.store.reading() as session:
        assert [(a.action, a.subject, a.actor) for a in queries.audit_entries(session)] == [("update_retry", "77", "web:lily")]


def test_a_reviewed_conversation_is_saved_as_a_regression_test_that_replays(app, tmp_path):
    """The case page's 保存为回归测试: a file for tests/data/approved/ that the engine replays exactly."""
    import yaml

    from dialogs import dialogues

    client = signed_in_client(app)
    number = re.search(r"KF-\d{8}-\d{4}", client.get("/cases").text).group(0)
    page = client.get(f"/cases/{number}").text
    assert "保存为回归测试" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    answer = client.post(f"/cases/{number}/approve", data={"csrf_token": token})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/x-yaml")
    assert answer.headers["content-disposition"] == f'attachment; filename="{number}.yaml"'
    [test] = yaml.safe_load(answer.text)
    assert test["case_numbers"] == [number] and "lily" in test["source"]
    assert [t["say"] for t in test["turns"]] == ["货物滞留", "12345678", "13800138000"]
    assert dialogues.replay(app.state.service.engine, test).passed
    assert "已保存为回归测试" in client.get(f"/cases/{number}").text  # recorded on the case
    refused = client.post("/cases/KF-20991231-0001/approve", data={"csrf_token": token})
    assert refused.status_code == 303  # no such case: told so on the page, nothing downloaded
