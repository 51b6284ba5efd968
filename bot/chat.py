"""The local chat: a person (or a script on stdin) plays the customer in the terminal."""

from __future__ import annotations

import sys
import unicodedata
from typing import TextIO

from bot.service import Service
from dialogs.conversation import Inbound, Reply

CHANNEL = "console"
QUIT_WORDS = {"/quit", "/exit"}  # leave at once, without a word to kefu
# Bidirectional overrides and isolates can reorder what the operator sees on the line.
_BIDI = {0x202A, 0x202B, 0x202C, 0x202D, 0x202E, 0x2066, 0x2067, 0x2068, 0x2069}


def safe(text: str) -> str:
    """Text as the terminal should show it: control characters (escape sequences a customer typed
    included) written out as \\x1b, \\u202e…, so they cannot move the cursor or retitle the window."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "\n\t" or (unicodedata.category(ch) != "Cc" and code not in _BIDI):
            out.append(ch)
        else:
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    return "".join(out)


def read_line(source: TextIO, interactive: bool, out: TextIO, prompt: str, label: str) -> str | None:
    """The next line a person types (at `prompt`) or stdin gives (echoed after `label`), without its line
    break; None at the end of input or Ctrl-C/Ctrl-D."""
    if interactive:
        try:
            return input(prompt)
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return None
    text = source.readline()
    if not text:
        return None
    text = text.removesuffix("\n").removesuffix("\r")
    print(f"{label}{safe(text)}", file=out)
    return text


def show(replies: list[Reply], out: TextIO) -> None:
    """Prints replies with their options numbered, as the customer can answer them."""
    for reply in replies:
        print(f"客服: {safe(reply.text)}", file=out)
        for i, option in enumerate(reply.options, start=1):
            print(f"  {i}. {safe(option.label)}", file=out)
    out.flush()


def _say(service: Service, user: str, text: str, out: TextIO) -> bool:
    """Sends one message and shows the answer; True when kefu said goodbye (the chat ends there; a
    goodbye with a complaint open is first confirmed, and the chat goes on until it is)."""
    turn = service.handle(CHANNEL, user, Inbound(text=text))
    show(turn.replies, out)
    return any(event.kind == "said_goodbye" for event in turn.events)


def run_chat(service: Service, user: str, source: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    """Runs the chat until a farewell, /quit, /exit or the end of input; interactive when source is a terminal."""
    if source.isatty():
        _interactive(service, user, out)
        return
    if hasattr(source, "reconfigure"):
        source.reconfigure(errors="replace")  # bytes that are not UTF-8 become U+FFFD, not a crash at storage
    for line in source:
        # One message per line, kept exactly as written (only the line break is not part of it).
        text = line.removesuffix("\n").removesuffix("\r")
        print(f"客户: {safe(text)}", file=out)
        if text.strip() in QUIT_WORDS:
            return
        if _say(service, user, text, out):
            return


def _interactive(service: Service, user: str, out: TextIO) -> None:
    try:
        import readline  # noqa: F401 - gives input() line editing and history (arrow keys, Ctrl-R)
    except ImportError:  # Python built without it: input() still works, without editing
        pass
    service.router.warm()  # trains while the person reads the greeting
    print("kefu 本地对话：输入消息后回车，输入选项的数字或文字进行选择；再见、/quit 或 Ctrl-D 退出。", file=out)
    if _is_new(service, user):
        show(service.receive(CHANNEL, user, Inbound(text="/start")), out)
    while True:
        try:
            line = input("您: ")
        except (EOFError, KeyboardInterrupt):
            print(file=out)
            return
        if line.strip() in QUIT_WORDS:
            return
        if _say(service, user, line, out):
            return


def _is_new(service: Service, user: str) -> bool:
    with service.store.turn(CHANNEL, user) as tx:
        return not tx.conversation.greeted
