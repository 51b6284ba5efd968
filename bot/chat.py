"""The local chat: a person (or a script on stdin) plays the customer in the terminal."""

from __future__ import annotations

import sys
from typing import TextIO

from bot.service import Service
from dialogs.conversation import Inbound, Reply

CHANNEL = "console"
QUIT_WORDS = {"/quit", "/exit"}


def show(replies: list[Reply], out: TextIO) -> None:
    """Prints replies with their options numbered, as the customer can answer them."""
    for reply in replies:
        print(f"客服: {reply.text}", file=out)
        for i, option in enumerate(reply.options, start=1):
            print(f"  {i}. {option.label}", file=out)
    out.flush()


def run_chat(service: Service, user: str, source: TextIO = sys.stdin, out: TextIO = sys.stdout) -> None:
    """Runs the chat until end of input; interactive when source is a terminal."""
    if source.isatty():
        service.router.warm()  # trains while the person reads the greeting
        print("kefu 本地对话：输入消息后回车，输入选项的数字或文字进行选择；/quit 退出。", file=out)
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
            show(service.receive(CHANNEL, user, Inbound(text=line)), out)
    for line in source:
        # One message per line, kept exactly as written (only the line break is not part of it).
        text = line.removesuffix("\n").removesuffix("\r")
        print(f"客户: {text}", file=out)
        show(service.receive(CHANNEL, user, Inbound(text=text)), out)


def _is_new(service: Service, user: str) -> bool:
    with service.store.turn(CHANNEL, user) as tx:
        return not tx.conversation.greeted
