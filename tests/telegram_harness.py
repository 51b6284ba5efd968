"""A Telegram for the tests: the telegram-test-api emulator (Node) plays the Bot API server and the
users, a small proxy in front of it fills the emulator's gaps against the real Bot API, and the
real kefu bot (bot/telegram/, unmodified) runs against them in a thread.

The emulator's gaps, shimmed here and never in the bot:
- getMe lacks is_bot; callback queries lack chat_instance (both required by PTB);
- sendMessage answers with the date in milliseconds and without `from`;
- editMessageText/editMessageReplyMarkup answer null (the Bot API answers the message or true);
- setMyCommands (and the other *MyCommands), sendPhoto and sendDocument are unknown to it;
- getUpdates ignores `offset` (it marks updates read when it hands them out, so an update fetched
  by a bot that then stops is lost) and returns at once (no long polling): the proxy keeps the
  updates until a later offset confirms them and holds an empty poll for up to a second;
- its webhook calls carry no X-Telegram-Bot-Api-Secret-Token: the proxy takes the setWebhook,
  points the emulator at itself and relays each update with the secret, as Telegram does.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl

import httpx

EMULATOR_DIR = Path(__file__).resolve().parent / "telegram_api"
BOT_ID, BOT_USERNAME = 666, "TestNameBot"  # what the emulator's getMe says
WAIT = 30.0  # seconds any single expectation may take before the test fails


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(check: Callable[[], Any], what: str, timeout: float = WAIT, every: float = 0.02) -> Any:
    """Polls check() until it returns something truthy; fails with `what` after the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def ensure_node_modules() -> None:
    """Installs the emulator (npm ci, from the lock file) on a fresh machine."""
    if (EMULATOR_DIR / "node_modules" / "telegram-test-api").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: the Telegram tests need Node.js and npm (.ci/run installs them)")
    subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=EMULATOR_DIR, check=True, timeout=600,
                   capture_output=True)


class Emulator:
    """telegram-test-api on 127.0.0.1, in a Node process of its own."""

    def __init__(self) -> None:
        ensure_node_modules()
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("node not found: the Telegram tests need Node.js")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen([node, "server.js", str(self.port)], cwd=EMULATOR_DIR, stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline()  # the script prints "ready" once it listens
        if line.strip() != "ready":
            self.process.kill()
            raise RuntimeError(f"the Telegram emulator did not start: {line!r}")
        self.client = httpx.Client(base_url=self.url, timeout=10)

    def post(self, path: str, body: dict) -> dict:
        response = self.client.post(path, json=body)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()


@dataclass
class Call:
    method: str
    params: dict


@dataclass
class BotAccount:
    """What the proxy knows of one bot token: its calls, its confirmed updates, its webhook."""

    calls: list[Call] = field(default_factory=list)
    pending: list[dict] = field(default_factory=list)  # fetched from the emulator, not yet confirmed
    webhook: dict | None = None  # {"url", "secret_token"}
    relayed: list[int] = field(default_factory=list)  # HTTP statuses of relayed webhook calls


class Proxy:
    """The Bot API as the bot sees it: the emulator, with its gaps filled (see the module's docstring)."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        self.accounts: dict[str, BotAccount] = {}
        self.lock = threading.Lock()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                proxy._serve(self)

            do_GET = do_POST

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="telegram-proxy", daemon=True)
        self.thread.start()

    def account(self, token: str) -> BotAccount:
        with self.lock:
            return self.accounts.setdefault(token, BotAccount())

    def calls(self, token: str, method: str) -> list[dict]:
        return [c.params for c in list(self.account(token).calls) if c.method == method]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- serving -----------------------------------------------------------------------------

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        raw = request.rfile.read(length) if length else b""
        parts = request.path.strip("/").split("/")
        try:
            if parts[0] == "relay":
                status, body = self._relay(parts[1], raw)
            elif parts[0].startswith("bot") and len(parts) == 2:
                params = _params(raw, request.headers.get("Content-Type", ""))
                status, body = 200, self._method(parts[0][3:], parts[1].split("?")[0], params)
            else:
                status, body = 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        except Exception as exc:  # shown to the bot as the Bot API would: an error, not a hang
            status, body = 500, {"ok": False, "error_code": 500, "description": f"proxy: {exc!r}"}
        data = json.dumps(body).encode()
        try:
            request.send_response(status)
            request.send_header("Content-Type", "application/json")
            request.send_header("Content-Length", str(len(data)))
            request.end_headers()
            request.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the bot gave up waiting (it is stopping)
            pass

    def _method(self, token: str, method: str, params: dict) -> dict:
        account = self.account(token)
        account.calls.append(Call(method, params))
        if method in ("setMyCommands", "deleteMyCommands"):
            return {"ok": True, "result": True}
        if method == "getMyCommands":
            return {"ok": True, "result": []}
        if method == "getUpdates":
            return {"ok": True, "result": self._updates(token, account, params)}
        if method == "setWebhook":
            account.webhook = {"url": params["url"], "secret_token": params.get("secret_token")}
            self.emulator.post(f"/bot{token}/setWebhook", {"url": f"{self.url}/relay/{token}"})
            return {"ok": True, "result": True}
        if method in ("sendPhoto", "sendDocument"):
            params = {**params, "text": params.get("caption") or f"[{method[4:].lower()}]"}
            method = "sendMessage"
        answer = self.emulator.post(f"/bot{token}/{method}", params)
        result = answer.get("result")
        if method in ("editMessageText", "editMessageReplyMarkup", "answerCallbackQuery", "deleteWebhook") \
                and answer.get("ok") and result is None:
            answer["result"] = True
        if method == "getMe" and isinstance(result, dict):
            result.setdefault("is_bot", True)
            result.update({"can_join_groups": True, "can_read_all_group_messages": False,
                           "supports_inline_queries": False})
        if method == "sendMessage" and isinstance(result, dict):
            if result.get("date", 0) > 10**11:  # milliseconds
                result["date"] //= 1000
            result.setdefault("from", {"id": BOT_ID, "is_bot": True, "first_name": "Bot", "username": BOT_USERNAME})
        return answer

    def _updates(self, token: str, account: BotAccount, params: dict) -> list[dict]:
        """getUpdates as Telegram does it: an offset confirms the updates before it, the others are
        given again; an empty poll waits (up to a second here) for something to arrive."""
        offset = int(params.get("offset") or 0)
        wait = min(float(params.get("timeout") or 0), 1.0)
        deadline = time.monotonic() + wait
        while True:
            fresh = self.emulator.post(f"/bot{token}/getUpdates", {}).get("result") or []
            with self.lock:
                account.pending = [u for u in account.pending + [_complete(u) for u in fresh]
                                   if u["update_id"] >= offset]
                ready = list(account.pending)
            if ready or time.monotonic() >= deadline:
                return ready
            time.sleep(0.02)

    def _relay(self, token: str, raw: bytes) -> tuple[int, dict]:
        """Delivers one update from the emulator to the bot's webhook, with the secret header."""
        account = self.account(token)
        assert account.webhook is not None, "relay without a webhook"
        update = _complete(json.loads(raw))
        headers = {"Content-Type": "application/json"}
        if account.webhook.get("secret_token"):
            headers["X-Telegram-Bot-Api-Secret-Token"] = account.webhook["secret_token"]
        response = httpx.post(account.webhook["url"], content=json.dumps(update), headers=headers, timeout=10)
        account.relayed.append(response.status_code)
        return 200, {"ok": True}  # the emulator crashes on a failed webhook call; the test reads `relayed`


def _params(raw: bytes, content_type: str) -> dict:
    if not raw:
        return {}
    if content_type.startswith("application/json"):
        return json.loads(raw)
    return dict(parse_qsl(raw.decode(), keep_blank_values=True))


def _complete(update: dict) -> dict:
    """Adds what the emulator leaves out of an update and PTB requires."""
    query = update.get("callback_query")
    if query is not None:
        query.setdefault("chat_instance", str(query.get("message", {}).get("chat", {}).get("id", 0)))
    message = update.get("message")
    if message is not None:
        message.pop("botToken", None)
    return update


# -- users and chats ------------------------------------------------------------------------------

@dataclass
class BotMessage:
    message_id: int
    chat_id: int
    text: str
    buttons: list[tuple[str, str]]  # (label, callback data), row by row

    def button(self, label: str) -> str:
        found = [data for text, data in self.buttons if text == label] or \
                [data for text, data in self.buttons if label in text]
        assert found, f"no button {label!r} on {self.text[:80]!r}; buttons: {[t for t, _ in self.buttons]}"
        return found[0]


class Telegram:
    """The emulator seen from the users' side, for one bot token."""

    def __init__(self, emulator: Emulator, proxy: Proxy, token: str):
        self.emulator, self.proxy, self.token = emulator, proxy, token
        self.api_url = proxy.url  # TELEGRAM_API_BASE_URL for the bot

    def bot_messages(self, chat_id: int) -> list[BotMessage]:
        """Every message the bot sent to a chat, as it is now (edits included), oldest first."""
        history = self.emulator.post("/getUpdatesHistory", {"token": self.token}).get("result") or []
        found = []
        for item in history:
            message = item.get("message") or {}
            if "chat_id" not in message or str(message["chat_id"]) != str(chat_id):
                continue
            markup = message.get("reply_markup") or {}
            if isinstance(markup, str):
                markup = json.loads(markup)
            buttons = [(b["text"], b.get("callback_data", "")) for row in markup.get("inline_keyboard", []) for b in row]
            found.append(BotMessage(item["messageId"], int(message["chat_id"]), message.get("text") or "", buttons))
        return sorted(found, key=lambda m: m.message_id)

    def message(self, chat_id: int, message_id: int) -> BotMessage:
        return next(m for m in self.bot_messages(chat_id) if m.message_id == message_id)

    def user(self, user_id: int, name: str, chat_id: int | None = None, chat_type: str = "private") -> "User":
        return User(self, user_id, name, chat_id if chat_id is not None else user_id, chat_type)


class User:
    """A Telegram user writing to the bot from one chat (their private chat, or a staff group)."""

    def __init__(self, telegram: Telegram, user_id: int, name: str, chat_id: int, chat_type: str):
        self.telegram, self.id, self.name, self.chat_id, self.chat_type = telegram, user_id, name, chat_id, chat_type
        self.cursor = 0  # the last bot message an expectation matched

    def _common(self) -> dict:
        chat = {"id": self.chat_id, "type": self.chat_type}
        if self.chat_type == "private":
            chat["first_name"] = self.name
        else:
            chat["title"] = f"chat {self.chat_id}"
        return {"botToken": self.telegram.token, "date": int(time.time()),
                "from": {"id": self.id, "is_bot": False, "first_name": self.name, "username": f"user{self.id}"},
                "chat": chat}

    def say(self, text: str, reply_to: BotMessage | None = None) -> None:
        """Sends a text (a command when it starts with /), optionally as a reply to a bot message."""
        message = {**self._common(), "text": text}
        if reply_to is not None:
            message["reply_to_message"] = self._bot_message(reply_to)
        if text.startswith("/"):
            command = text.split()[0]
            message["entities"] = [{"offset": 0, "length": len(command), "type": "bot_command"}]
            self.telegram.emulator.post("/sendCommand", message)
        else:
            self.telegram.emulator.post("/sendMessage", message)

    def send(self, **fields: Any) -> None:
        """Sends any other kind of message: photo=[...], document={...}, sticker={...}, location={...}."""
        self.telegram.emulator.post("/sendMessage", {**self._common(), **fields})

    def press(self, label: str, message: BotMessage | None = None) -> BotMessage:
        """Presses a button: on the given message, else on the latest bot message in this chat that has it."""
        if message is None:
            message = wait_until(lambda: next((m for m in reversed(self.telegram.bot_messages(self.chat_id))
                                               if any(label == t or label in t for t, _ in m.buttons)), None),
                                 f"a message with a button {label!r} in chat {self.chat_id}")
        data = message.button(label)
        common = self._common()
        self.telegram.emulator.post("/sendCallback", {
            "botToken": self.telegram.token, "from": common["from"], "data": data,
            "message": self._bot_message(message)})
        return message

    def forge(self, data: str, message: BotMessage) -> None:
        """Presses a button that is not there: callback data of the user's choosing on a bot message (the Bot
        API warns that a bad client can send any data)."""
        self.telegram.emulator.post("/sendCallback", {
            "botToken": self.telegram.token, "from": self._common()["from"], "data": data,
            "message": self._bot_message(message)})

    def _bot_message(self, message: BotMessage) -> dict:
        markup = {"inline_keyboard": [[{"text": t, "callback_data": d}] for t, d in message.buttons]}
        chat = self._common()["chat"]
        chat["id"] = message.chat_id
        return {"message_id": message.message_id, "date": int(time.time()), "chat": chat, "text": message.text,
                "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bot", "username": BOT_USERNAME},
                "reply_markup": markup if message.buttons else None}

    def expect(self, fragment: str, timeout: float = WAIT) -> BotMessage:
        """Waits for the bot's next message in this chat containing fragment (after the last one expected)."""
        def find() -> BotMessage | None:
            return next((m for m in self.telegram.bot_messages(self.chat_id)
                         if m.message_id > self.cursor and fragment in m.text), None)

        try:
            found = wait_until(find, f"{fragment!r} in chat {self.chat_id}", timeout)
        except AssertionError:
            seen = [m.text[:120] for m in self.telegram.bot_messages(self.chat_id) if m.message_id > self.cursor]
            raise AssertionError(f"chat {self.chat_id} never got {fragment!r} within {timeout:g} s; "
                                 f"the bot sent since the last expectation: {seen}") from None
        self.cursor = found.message_id
        return found

    def messages(self) -> list[BotMessage]:
        return self.telegram.bot_messages(self.chat_id)


class RunningBot:
    """kefu's Telegram bot (bot.telegram.TelegramBot, unmodified) running in a thread with its own loop."""

    def __init__(self, settings, proxy: Proxy, token: str, service=None):
        from bot.telegram import TelegramBot

        self.proxy, self.token = proxy, token
        self.bot = TelegramBot(settings, service)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="kefu-telegram", daemon=True)
        before = len(proxy.calls(token, "getUpdates")) + len(proxy.calls(token, "setWebhook"))
        self.thread.start()
        wait_until(lambda: self.error or (self.bot.application.running and
                                          len(proxy.calls(token, "getUpdates")) + len(proxy.calls(token, "setWebhook")) > before),
                   "the bot to start")
        if self.error:
            raise self.error

    def _run(self) -> None:
        try:
            self.bot.run(handle_signals=False)
        except BaseException as exc:  # surfaced to the test
            self.error = exc

    def stop(self) -> None:
        wait_until(lambda: self.bot._loop is not None, "the bot's event loop")
        self.bot.stop()
        self.thread.join(timeout=WAIT)
        assert not self.thread.is_alive(), "the bot did not stop"
        if self.error:
            raise self.error


def env_without_telegram() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}


class BotApiStub:
    """A Bot API that answers every call the same way: Telegram accepting a token (getMe's bot), or
    refusing it (401). For tests of what kefu does before it talks to the emulator."""

    def __init__(self, accept: bool):
        body = ({"ok": True, "result": {"id": BOT_ID, "is_bot": True, "first_name": "kefu", "username": BOT_USERNAME}}
                if accept else {"ok": False, "error_code": 401, "description": "Unauthorized"})
        data, status = json.dumps(body).encode(), 200 if accept else 401

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, name="bot-api-stub", daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
