"""The kefu command: chat locally, check the content, look at cases."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from sqlmodel import select

from bot.config import Settings
from dialogs.content import ContentError, load_content

app = typer.Typer(no_args_is_help=True, add_completion=False, help="kefu: the customer-service manual as a working assistant.")


def _service():
    from bot.service import Service

    try:
        return Service.from_settings(Settings())
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)


def _print_problems(exc: ContentError) -> None:
    for problem in exc.problems:
        print(problem, file=sys.stderr)
    print(f"kefu: the content has {len(exc.problems)} problem(s); fix them and try again.", file=sys.stderr)


@app.command()
def chat(user: str = typer.Option("local", help="Customer identity; the same id continues the same conversation.")) -> None:
    """Chat with kefu in the terminal as a customer (reads one message per line when piped)."""
    from bot.chat import run_chat

    run_chat(_service(), user)


@app.command()
def validate(content: Optional[Path] = typer.Option(None, help="Content folder (default: the configured one).")) -> None:
    """Check every content file; print each problem with file, line and field."""
    folder = content or Settings().content_dir
    try:
        loaded = load_content(folder)
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)
    print(f"OK: {len(loaded.categories)} categories, content version {loaded.version}")


@app.command()
def cases(status: str = typer.Option("open", help="open, closed or all")) -> None:
    """List cases with their current escalation step and deadline."""
    from bot.store import CaseRow, aware

    service = _service()
    with service.store.session() as session:
        query = select(CaseRow).order_by(CaseRow.id)
        if status != "all":
            query = query.where(CaseRow.status == status)
        for case in session.exec(query):
            role = service.content.shared.roles[case.step_role].name
            deadline = aware(case.step_deadline).astimezone(service.engine.zone)
            print(f"{case.number}\t{case.category}\t{case.status}\t运单 {case.waybill or '-'}\t"
                  f"第{case.step + 1}步 {role}\t期限 {deadline:%Y-%m-%d %H:%M}")
