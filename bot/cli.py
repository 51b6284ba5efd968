"""The kefu command: chat locally, run the Telegram bot, check the content, look at cases and staff."""

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


@app.command()
def checklist(category: Optional[str] = typer.Argument(None, help="A category id (default: every category).")) -> None:
    """Show each category's handling steps: who acts, what they do, the deadline, and where the text comes from."""
    try:
        loaded = load_content(Settings().content_dir)
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)
    if category is not None and category not in loaded.categories:
        print(f"kefu: no category '{category}' (known: {', '.join(loaded.categories)})", file=sys.stderr)
        raise typer.Exit(2)
    origin = {"manual": "手册", "draft": "草稿"}
    for cid in [category] if category else loaded.shared.menu:
        if cid not in loaded.categories:
            continue  # a fee or policy topic: no handling steps
        cat = loaded.categories[cid]
        print(f"{cat.name}（{cid}）— {cat.manual_section}")
        for i, step in enumerate(cat.handling, start=1):
            role = loaded.shared.roles[step.role].name
            source = f"，{step.action.source}" if step.action.source else ""
            print(f"  {i}. {role}，{step.deadline_hours:g} 小时内：{step.action.text}  [{origin[step.action.provenance.value]}{source}]")
        print()


@app.command()
def telegram() -> None:
    """Run the Telegram bot: long polling, or a webhook server when telegram_webhook_url is set."""
    from bot.casework import CaseworkError
    from bot.telegram import TelegramBot, TelegramConfigError, configure_logging

    settings = Settings()
    token = settings.telegram_bot_token.get_secret_value().strip() if settings.telegram_bot_token else ""
    if not token:
        print("kefu: TELEGRAM_BOT_TOKEN is not set. Get a token from @BotFather in Telegram and set it, e.g.\n"
              "  TELEGRAM_BOT_TOKEN=123456:ABC... kefu telegram\n(see README, 'Telegram').", file=sys.stderr)
        raise typer.Exit(2)
    configure_logging(token)
    try:
        bot = TelegramBot(settings, _service())
    except (TelegramConfigError, CaseworkError) as exc:
        print(f"kefu: {exc}", file=sys.stderr)
        raise typer.Exit(2)
    bot.run()


staff_app = typer.Typer(no_args_is_help=True, help="Staff, supervisors and admins (by Telegram user id).")
app.add_typer(staff_app, name="staff")


@staff_app.command("add")
def staff_add(
    telegram_id: int = typer.Argument(..., help="The person's Telegram user id."),
    role: str = typer.Option("staff", help="staff, supervisor or admin."),
    chat: Optional[int] = typer.Option(None, help="The staff chat where this person's case cards are posted."),
    handles: str = typer.Option("", help="Handling roles this person covers, comma-separated (e.g. customer_service,branch_manager); empty: all."),
) -> None:
    """Add or update a staff member."""
    from bot.casework import Casework, CaseworkError

    try:
        member = Casework(_service()).add_staff(telegram_id, role, chat, [h for h in handles.split(",") if h])
    except CaseworkError as exc:
        print(f"kefu: {exc}", file=sys.stderr)
        raise typer.Exit(2)
    print(f"OK: {member.telegram_id} {member.role} chat={member.chat_id} handles={','.join(member.handles) or 'all'}")


@staff_app.command("list")
def staff_list() -> None:
    """List staff members."""
    from bot.casework import Casework

    for m in Casework(_service()).all_staff():
        print(f"{m.telegram_id}\t{m.role}\tchat={m.chat_id}\thandles={','.join(m.handles) or 'all'}")


EVAL_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "intents_eval.yaml"


def _router(folder: Path):
    """Trains the intent router on the content's examples, or prints the content's problems and exits."""
    from dialogs.content import training_examples
    from dialogs.intents import Router

    try:
        content = load_content(folder)
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)
    examples = training_examples(content.categories, content.policies, content.other)
    return Router.train(examples), content, examples


@app.command()
def classify(
    content: Optional[Path] = typer.Option(None, help="Content folder (default: the configured one)."),
    today: Optional[str] = typer.Option(None, help="The date 昨天 or 3号 count from, YYYY-MM-DD (default: today in the content's time zone)."),
) -> None:
    """Route each message on stdin (one per line) and pull out its entities; print one JSON object per line."""
    import json
    from datetime import date, datetime
    from zoneinfo import ZoneInfo

    from dialogs.entities import extract

    folder = content or Settings().content_dir
    router, loaded, _ = _router(folder)
    try:
        day = date.fromisoformat(today) if today else datetime.now(ZoneInfo(loaded.shared.timezone)).date()
    except ValueError:
        raise typer.BadParameter(f"not a date: {today!r} (expected YYYY-MM-DD)", param_hint="--today")
    for line in sys.stdin:
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        result = router.classify(text)
        entities = extract(text, loaded.shared.routing.places, today=day)
        print(json.dumps({"text": text, "category": result.label, "confidence": round(result.confidence, 4),
                          "entities": entities.as_json()}, ensure_ascii=False), flush=True)


DIALOGUES = Path(__file__).resolve().parent.parent / "tests" / "data" / "dialogues"


@app.command("eval-dialogues")
def eval_dialogues(
    data: list[Path] = typer.Option([DIALOGUES], help="Conversation files or folders (tests/data/dialogues/README.md)."),
    content: Optional[Path] = typer.Option(None, help="Content folder (default: the configured one)."),
    failures: int = typer.Option(10, help="How many failed conversations to list."),
    show: list[str] = typer.Option([], help="Print the transcript of these conversation ids."),
) -> None:
    """Replay the test conversations through the engine: pass rate per pattern, and what failed."""
    from dialogs import dialogues
    from dialogs.engine import Engine

    router, loaded, _ = _router(content or Settings().content_dir)
    report = dialogues.evaluate(Engine(loaded, router), dialogues.load(data))
    print(dialogues.format_report(report, failures=failures))
    for result in report.results:
        if result.id in show:
            print(f"\n{result.id}: {'passed' if result.passed else '; '.join(result.failures)}")
            print("\n".join(result.transcript))


@app.command("eval-intents")
def eval_intents(
    data: Path = typer.Option(EVAL_DATA, help="Labelled messages: `messages: [{text, category}]`."),
    threshold: Optional[float] = typer.Option(None, help="Least confidence answered without asking back (default: shared.yaml's routing.threshold)."),
    content: Optional[Path] = typer.Option(None, help="Content folder (default: the configured one)."),
    misses: int = typer.Option(20, help="How many of the most confident misses to list."),
) -> None:
    """Measure intent routing on labelled messages: accuracy, precision and recall per label, confusions, misroutes."""
    import time

    from dialogs.evaluation import evaluate, format_report, load_labelled

    started = time.perf_counter()
    router, loaded, examples = _router(content or Settings().content_dir)
    trained = time.perf_counter() - started
    print(f"trained on {sum(len(v) for v in examples.values())} examples of {len(examples)} labels"
          f" in {trained:.2f} s (including imports)")
    report = evaluate(router, load_labelled(data), loaded.shared.routing.threshold if threshold is None else threshold)
    print(format_report(report, misses=misses))
