"""The kefu command: chat locally, run the Telegram bot, check the content and the deployment, look at
cases and staff, back up the database, and answer customers' requests for their data."""

from __future__ import annotations

import json
import sys
from datetime import datetime
from enum import Enum
from functools import cache
from pathlib import Path
from typing import NoReturn, Optional

import typer

from bot import logs
from bot.config import Settings, SettingsError, load_settings
from dialogs.content import ContentError, load_content

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="kefu: the customer-service manual as a working assistant.")
_debug = False


class LogFormat(str, Enum):
    text = "text"
    json = "json"


@app.callback()
def options(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks, and kefu's debug lines."),
    log_format: LogFormat = typer.Option(LogFormat.text, "--log-format", help="text, or json: one JSON object per line."),
    log_pii: bool = typer.Option(False, "--log-pii", help="Log customers' words, phones and waybills unmasked (for debugging only)."),
) -> None:
    """Sets up logging for every command."""
    global _debug
    _debug = debug
    logs.configure(debug=debug, json_lines=log_format is LogFormat.json, pii=log_pii)


def main() -> None:
    """Runs the kefu command: a problem with the settings, the database or Telegram is one line and exit
    code 2; anything else one line and exit code 1; the traceback only with --debug."""
    from bot.backup import BackupError
    from bot.botapi import BotApiError
    from bot.storage.database import DatabaseError, one_line
    from bot.logs import scrub

    try:
        app()
    except SettingsError as exc:
        _fail(*exc.lines)
    except (DatabaseError, BotApiError, BackupError) as exc:
        if _debug:
            raise
        _fail(str(exc))
    except Exception as exc:
        # An error may quote the customer's words (PostgreSQL's "DETAIL: Failing row contains (…)"): scrubbed.
        if _debug:
            import traceback

            print(scrub(traceback.format_exc()), file=sys.stderr, end="")
            sys.exit(1)
        print(f"kefu: unexpected error: {type(exc).__name__}: {scrub(one_line(exc))} (--debug shows the traceback)",
              file=sys.stderr)
        sys.exit(1)


def _fail(*lines: str) -> NoReturn:
    for line in lines:
        print(f"kefu: {line}", file=sys.stderr)
    sys.exit(2)


@cache
def settings() -> Settings:
    return load_settings()


def _service(create: bool = True):
    from bot.service import Service

    try:
        return Service.from_settings(settings(), create=create)
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
def validate(content: Optional[Path] = typer.Option(None, help="Content folder (default: the configured one)."),
             drafts: bool = typer.Option(False, "--drafts", help="Also count the drafts no supervisor has confirmed yet, and list them.")) -> None:
    """Check every content file; print each problem with file, line and field."""
    folder = content or settings().content_dir
    try:
        loaded = load_content(folder)
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)
    from dialogs.practice import load_training

    try:
        training = load_training(folder, set(loaded.categories))
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)
    from bot.staff_texts import load_staff_texts
    from dialogs.assist import load_assist

    try:
        assist_content = load_assist(folder, set(loaded.categories))
        load_staff_texts(folder)
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)
    print(f"OK: {len(loaded.categories)} categories, content version {loaded.version}; "
          f"training: {sum(len(s) for s in training.scenarios.values())} scenarios, {training.version}; "
          f"staff assistant: {len(assist_content.rules)} rules")
    if drafts:
        _print_unconfirmed(loaded)


def _print_unconfirmed(loaded) -> None:
    from dialogs.drafts import drafts as all_drafts

    found = all_drafts(loaded)
    open_ = [d for d in found if d.confirmed is None]
    print(f"drafts: {len(open_)} of {len(found)} still unconfirmed")
    for d in open_:
        value = d.value.replace("\n", " ")
        print(f"  {d.key}  [{d.kind}] {value[:40]}{'…' if len(value) > 40 else ''}")


class CaseStatus(str, Enum):
    open = "open"
    closed = "closed"
    all = "all"


@app.command()
def cases(status: CaseStatus = typer.Option(CaseStatus.open, help="open, closed or all"),
          overdue: bool = typer.Option(False, "--overdue", help="Only open cases past their step's deadline "
                                       "(the clock not paused for the customer)."),
          category: Optional[str] = typer.Option(None, help="Only this category (an id, e.g. stranded)."),
          since: Optional[datetime] = typer.Option(None, formats=["%Y-%m-%d"], help="Opened on or after this local date."),
          until: Optional[datetime] = typer.Option(None, formats=["%Y-%m-%d"], help="Opened on or before this local date."),
          search: str = typer.Option("", help="Words found in the case number, waybill, phone or what people wrote.")) -> None:
    """List cases with their current escalation step and deadline (local time, with its UTC offset);
    overdue ones are marked 超时. Read through bot/storage/queries.py, as the supervisor pages are."""
    from bot.storage import queries
    from bot.storage.tables import aware, utcnow

    service = _service(create=False)
    if category is not None and category not in service.content.case_kinds:
        print(f"kefu: no category '{category}' (known: {', '.join(service.content.case_kinds)})", file=sys.stderr)
        raise typer.Exit(2)
    zone, now = service.engine.zone, utcnow()
    wanted = queries.CaseFilter(category=category, status=None if status is CaseStatus.all else status.value,
                                overdue=overdue, search=search, opened_from=since.date() if since else None,
                                opened_to=until.date() if until else None)
    with service.store.reading() as session:
        found = queries.all_cases(session, wanted, zone, now)
    for case in found:
        role = service.content.shared.roles[case.step_role].name
        deadline = aware(case.step_deadline).astimezone(zone)
        late = "\t超时" if queries.is_overdue(case, now) else ""
        print(f"{case.number}\t{case.category}\t{case.status}\t运单 {case.waybill or '-'}\t"
              f"第{case.step + 1}步 {role}\t期限 {deadline.isoformat(sep=' ', timespec='minutes')}{late}")
    if not found:
        print("kefu: no cases match" if overdue or category or since or until or search
              else f"kefu: no {'' if status is CaseStatus.all else status.value + ' '}cases", file=sys.stderr)


@app.command()
def checklist(category: Optional[str] = typer.Argument(None, help="A category id (default: every category).")) -> None:
    """Show each category's handling steps: who acts, what they do, the deadline, and where the text comes from."""
    try:
        loaded = load_content(settings().content_dir)
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)
    if category is not None and category not in loaded.categories:
        print(f"kefu: no category '{category}' (known: {', '.join(loaded.categories)})", file=sys.stderr)
        raise typer.Exit(2)
    origin = {"manual": "手册", "draft": "草稿"}
    confirmed = "草稿，已确认"
    for cid in [category] if category else loaded.shared.menu:
        if cid not in loaded.categories:
            continue  # a fee or policy topic: no handling steps
        cat = loaded.categories[cid]
        print(f"{cat.name}（{cid}）— {cat.manual_section}")
        for i, step in enumerate(cat.handling, start=1):
            role = loaded.shared.roles[step.role].name
            source = f"，{step.action.source}" if step.action.source else ""
            mark = confirmed if step.action.confirmed else origin[step.action.provenance.value]
            print(f"  {i}. {role}，{step.deadline_hours:g} 小时内：{step.action.text}  [{mark}{source}]")
        print()


@app.command()
def telegram(receive_only: bool = typer.Option(False, "--receive-only", help="Only keep the updates Telegram sends "
                                               "(and run the timed checks), for workers to handle."),
             worker: bool = typer.Option(False, "--worker", help="Handle the updates a --receive-only process kept; "
                                         "several workers may run over one PostgreSQL.")) -> None:
    """Run the Telegram bot: long polling, or a webhook server when telegram_webhook_url is set."""
    from bot.botapi import get_me, token_of
    from bot.casework import CaseworkError
    from bot.telegram import TelegramBot, TelegramConfigError

    config = settings()
    token = token_of(config)
    if not token:
        print("kefu: TELEGRAM_BOT_TOKEN is not set. Get a token from @BotFather in Telegram and set it, e.g.\n"
              "  TELEGRAM_BOT_TOKEN=123456:ABC... kefu telegram\n(see README, 'Telegram').", file=sys.stderr)
        raise typer.Exit(2)
    logs.hide(token)
    get_me(config)  # a refused token or an unreachable Bot API: one line, before PTB's retries
    try:
        if receive_only and worker:
            raise TelegramConfigError("--receive-only and --worker are two processes: start one of each")
        bot = TelegramBot(config, _service(), role="receive" if receive_only else "work" if worker else "all")
    except (TelegramConfigError, CaseworkError) as exc:
        print(f"kefu: {exc}", file=sys.stderr)
        raise typer.Exit(2)
    bot.work() if worker else bot.run()


@app.command()
def doctor() -> None:
    """Check settings, content, database and schema, the Telegram token, staff chats and disk space."""
    from bot.doctor import FAIL, run

    failed = 0
    for check in run():
        print(check.line(), flush=True)
        failed += check.status == FAIL
    if failed:
        print(f"kefu: {failed} check(s) failed", file=sys.stderr)
        raise typer.Exit(1)


@app.command()
def backup(path: Path = typer.Argument(..., help="The backup file to write (must not exist).")) -> None:
    """Copy the database to PATH, consistently, while kefu runs (SQLite's online backup; pg_dump for PostgreSQL)."""
    from bot.backup import backup as make_backup

    kind = make_backup(settings(), path)
    print(f"OK: {kind} backup written to {path}")


@app.command()
def restore(
    path: Path = typer.Argument(..., help="A file written by kefu backup."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Replace the database's contents with a backup. Stop kefu first."""
    from bot.audit import record
    from bot.backup import restore as put_back
    from bot.storage.database import open_database, shown

    config = settings()
    _confirm(yes, f"Replace everything in {shown(config.database_url)} with {path}?")
    kind = put_back(config, path)
    db = open_database(config)
    from sqlmodel import Session

    with Session(db) as session, session.begin():
        record(session, "restore", None, {"from": str(path)})
    print(f"OK: {kind} database restored from {path}")


def _confirm(yes: bool, question: str) -> None:
    if yes:
        return
    if not sys.stdin.isatty():
        _fail(f"{question} Not confirmed: add --yes to run without a terminal.")
    if not typer.confirm(question, default=False):
        print("kefu: nothing changed", file=sys.stderr)
        raise typer.Exit(1)


customer_app = typer.Typer(no_args_is_help=True, help="One customer's personal data: export or erase it (audited).")
app.add_typer(customer_app, name="customer")
USER_KEY = typer.Argument(..., help="The customer's user key: their Telegram user id, or kefu chat's --user.")
CHANNEL = typer.Option(None, help="Only this channel (telegram or console); default: every channel.")


def _database(create: bool = False):
    from bot.storage.database import open_database

    return open_database(settings(), create=create)


@customer_app.command("export")
def customer_export(user_key: str = USER_KEY, channel: Optional[str] = CHANNEL) -> None:
    """Print everything kept about one customer as JSON: conversations, messages, events, cases, attachments."""
    from bot.customers import export

    data = export(_database(), user_key, channel)
    if not data["conversations"] and not data["telegram_updates"]:
        print(f"kefu: nothing is kept about {user_key}", file=sys.stderr)
    json.dump(data, sys.stdout, ensure_ascii=False, indent=2)
    print()


@customer_app.command("erase")
def customer_erase(user_key: str = USER_KEY, channel: Optional[str] = CHANNEL,
                   yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation.")) -> None:
    """Erase one customer's messages, attachments and facts; cases keep anonymous statistics."""
    from bot.customers import erase

    db = _database()
    _confirm(yes, f"Erase the personal data of {user_key}? This cannot be undone.")
    counts = erase(db, user_key, channel)
    print("OK: erased " + ", ".join(f"{n} {what}" for what, n in counts.items()))


@customer_app.command("purge")
def customer_purge(days: Optional[int] = typer.Option(None, min=1, help="Default: the retention_days setting.")) -> None:
    """Erase the personal data of conversations idle for DAYS whose cases are all closed (retention)."""
    from bot.customers import purge

    days = days or settings().retention_days
    if days is None:
        _fail("no retention period: set retention_days (KEFU_RETENTION_DAYS) or give --days")
    print(f"OK: erased {purge(_database(), days)} conversation(s) idle for more than {days} days")


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

    members = Casework(_service(create=False)).all_staff()
    for m in members:
        print(f"{m.telegram_id}\t{m.role}\tchat={m.chat_id}\thandles={','.join(m.handles) or 'all'}")
    if not members:
        print("kefu: no staff yet (kefu staff add ID --chat CHAT_ID)", file=sys.stderr)


@staff_app.command("remove")
def staff_remove(telegram_id: int = typer.Argument(..., help="The person's Telegram user id.")) -> None:
    """Remove a staff member: from then on they are a customer like anyone else (audited)."""
    from bot.casework import Casework

    if not Casework(_service(create=False)).remove_staff(telegram_id):
        _fail(f"{telegram_id} is not staff (kefu staff list lists them)")
    print(f"OK: {telegram_id} removed")
    if any(m.telegram_id == telegram_id for m in settings().staff):
        print(f"kefu: {telegram_id} is still a [[staff]] entry in kefu.toml, which kefu telegram merges in at "
              "every start: remove it there too", file=sys.stderr)


EVAL_DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "intents_eval.yaml"


def _router(folder: Path):
    """Trains the intent router on the content's examples, or prints the content's problems and exits."""

    from dialogs.intents import Router

    try:
        content = load_content(folder)
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)
    examples = content.examples()
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

    folder = content or settings().content_dir
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
    threshold: Optional[float] = typer.Option(None, help="Least score answered without asking back (default: shared.yaml's routing.certainty, or routing.threshold with --score confidence)."),
    score: Optional[str] = typer.Option(None, help="What decides answering without asking back: certainty (calibrated; the default when shared.yaml sets routing.certainty) or confidence."),
    content: Optional[Path] = typer.Option(None, help="Content folder (default: the configured one)."),
    misses: int = typer.Option(20, help="How many of the most confident misses to list."),
    split: Optional[str] = typer.Option(None, help="Held-out set only: dev, test or all (default: all)."),
    source: Optional[str] = typer.Option(None, help="Held-out set only: the source ids to keep, comma-separated (e.g. s3,s5; default: all)."),
) -> None:
    """Measure intent routing on labelled messages: accuracy, precision and recall per label, confusions, misroutes."""
    import time

    from dialogs.evaluation import evaluate, format_report, load_alternatives, load_labelled

    started = time.perf_counter()
    router, loaded, examples = _router(content or settings().content_dir)
    trained = time.perf_counter() - started
    print(f"trained on {sum(len(v) for v in examples.values())} examples of {len(examples)} labels"
          f" in {trained:.2f} s (including imports)")
    sources = {s.strip() for s in source.split(",") if s.strip()} if source else None
    routing = loaded.shared.routing
    if score is None:
        score = "certainty" if routing.certainty is not None else "confidence"
    if score not in ("certainty", "confidence"):
        raise typer.BadParameter("certainty or confidence", param_hint="--score")
    if threshold is None:
        threshold = routing.certainty if score == "certainty" and routing.certainty is not None else routing.threshold
    labelled, alternatives = load_labelled(data, split, sources), load_alternatives(data, split, sources)
    report = evaluate(router, labelled, threshold, alternatives, score)
    print(format_report(report, misses=misses))
    if labelled:  # what the customer gets: the engine's first move, with every rule beside the router's reading
        from dialogs.dialogues import first_moves
        from dialogs.engine import Engine

        moves, n = first_moves(Engine(loaded, router), labelled, alternatives), len(labelled)
        print(f"\nthe engine's answer to each as a first message: started it {moves['right'] / n:.1%}, started another"
              f" {moves['wrong'] / n:.1%}, asked which problem (menu or buttons) {moves['asked'] / n:.1%}")


@app.command("eval-agreement")
def eval_agreement(
    first: Path = typer.Argument(..., help="A labelling of messages (the held-out set's format)."),
    others: list[Path] = typer.Argument(..., help="Other labellings of the same messages."),
) -> None:
    """Measure how far labellings of the same messages agree (e.g. the held-out set labelled again, blind): the
    ceiling a router can be held to."""
    from itertools import combinations

    from dialogs.evaluation import agreement

    for split in ("all", "dev", "test"):
        for a, b in combinations([first, *others], 2):
            try:
                found = agreement(a, b, split)
            except ValueError as exc:
                raise typer.BadParameter(str(exc))
            if found.messages:
                n = found.messages
                print(f"{split:4}  {a.stem} vs {b.stem}: {n} messages, same label {found.same_label / n:.1%},"
                      f" label or alt shared {found.overlapping / n:.1%}, kappa {found.kappa:.3f}")


def _training(folder: Path):
    """Loads the content and the training content, or prints their problems and exits."""
    from dialogs.practice import load_training, topic_texts

    try:
        content = load_content(folder)
        return content, load_training(folder, set(content.categories), topic_texts(content))
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)


@app.command()
def train(
    category: Optional[str] = typer.Option(None, help="The complaint category to practise (default: choose, or a random one)."),
    scenario: Optional[int] = typer.Option(None, min=1, help="The scenario's number in the category (default: a random one)."),
    trainee: Optional[str] = typer.Option(None, help="Who is training (default: your login name)."),
    history: bool = typer.Option(False, "--history", help="Show the stored sessions and scores instead (every trainee's unless --trainee)."),
) -> None:
    """Practise handling a complaint: kefu plays the customer, you answer, each reply is scored against the manual."""
    import getpass
    import random
    from zoneinfo import ZoneInfo

    from bot import practice
    from bot.storage.store import Store

    content, training = _training(settings().content_dir)
    zone = ZoneInfo(content.shared.timezone)
    if history:
        store = Store(_database(create=False), content.version, zone)
        if not practice.history(store, trainee, zone):
            print(f"kefu: no training sessions{f' for {trainee}' if trainee else ''}", file=sys.stderr)
        return
    if category is not None and category not in training.scenarios:
        from dialogs.yamlfile import did_you_mean

        raise typer.BadParameter(f"no training scenarios for '{category}'" + did_you_mean(category, training.scenarios)
                                 + f" (known: {', '.join(sorted(training.scenarios))})", param_hint="--category")
    if category is None and scenario is not None:
        raise typer.BadParameter("--scenario needs --category", param_hint="--scenario")
    if category is None and sys.stdin.isatty():
        category = practice.choose_category(training, content)
    if category is not None and scenario is not None and scenario > len(training.scenarios[category]):
        raise typer.BadParameter(f"{category} has {len(training.scenarios[category])} scenarios", param_hint="--scenario")
    category, number = practice.pick(training, category, scenario, random.Random())
    store = Store(_database(create=True), content.version, zone)
    practice.run_training(content, training, store, trainee or getpass.getuser(), category, number)


@app.command()
def assist(staff: int = typer.Option(..., help="Your Telegram user id, as `kefu staff add` registered it.")) -> None:
    """Guided complaint for staff: type what the customer says; kefu shows what to say, record and do."""
    from bot.assist import Assistant, run_assist
    from bot.casework import Casework
    from dialogs.assist import load_assist

    service = _service()
    try:
        assist_content = load_assist(settings().content_dir, set(service.content.categories))
    except ContentError as exc:
        _print_problems(exc)
        raise typer.Exit(1)
    casework = Casework(service)
    if casework.staff(staff) is None:
        _fail(f"{staff} is not staff: kefu staff add {staff} registers them")
    run_assist(Assistant(casework, assist_content), staff)


@app.command()
def approve(
    number: str = typer.Argument(..., help="The case number, e.g. KF-20261202-0001."),
    reviewer: str = typer.Option(..., help="Who reviewed and approved the conversation."),
    folder: Optional[Path] = typer.Option(None, help="Where to write it (default: tests/data/approved in this checkout)."),
) -> None:
    """Keep a reviewed case's conversation as a regression test: the suite replays it and checks kefu still answers as approved."""
    from bot.approved import APPROVED_DIR, NotApprovable, save_approved

    service = _service(create=False)
    try:
        path = save_approved(service.store, number, reviewer, service.engine.zone, folder or APPROVED_DIR)
    except NotApprovable as exc:
        _fail(str(exc))
    print(f"OK: {path}")


@app.command()
def inbox(retry: Optional[int] = typer.Option(None, "--retry", help="Send this failed update back to be handled once more.")) -> None:
    """List the Telegram updates that failed (waiting for a retry, or dead after every attempt)."""
    from zoneinfo import ZoneInfo

    from bot.chat import safe
    from bot.storage import queries
    from bot.storage.inbox import Inbox
    from bot.storage.tables import aware

    service = _service(create=False)
    box = Inbox(service.store.db)
    if retry is not None:
        if not box.retry(retry):
            _fail(f"no failed update {retry} (kefu inbox lists them)")
        print(f"OK: update {retry} will be handled again by the running kefu telegram within seconds")
        return
    zone = ZoneInfo(service.content.shared.timezone)
    with service.store.reading() as session:
        rows = queries.failed_updates(session)
    for row in rows:
        message = row.data.get("message") or row.data.get("callback_query") or {}
        user = (message.get("from") or {}).get("id", "?")
        said = message.get("text") or message.get("data") or ""
        when = f"{aware(row.received_at).astimezone(zone):%Y-%m-%d %H:%M}"
        next_try = f"  下次重试 {aware(row.retry_at).astimezone(zone):%H:%M:%S}" if row.retry_at else ""
        print(f"{row.update_id}  {row.status}  {row.attempts} 次  {when}  用户 {user}  {safe(said[:40])!r}{next_try}\n"
              f"    {safe(row.error or '')}")
    if not rows:
        print("kefu: no failed updates", file=sys.stderr)


db_app = typer.Typer(no_args_is_help=True, help="The database's schema (Alembic migrations).")
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database's schema to this kefu's newest revision (take a kefu backup first)."""
    from bot.storage import schema
    from bot.storage.database import sqlite_file
    from bot.storage.engine import READ_ONLY  # noqa: F401  (connect's SQLite settings come with create_engine below)
    from sqlalchemy import create_engine

    current = settings()
    path = sqlite_file(current.database_url)
    if path is not None and not path.exists():
        _fail(f"no database at {path}: kefu chat or kefu telegram makes a new one at the newest schema")
    engine = create_engine(current.database_url, hide_parameters=True)
    with engine.begin() as conn:
        before, after = schema.upgrade(conn)
    print(f"OK: {before or 'from before the migrations'} → {after}" if before != after else f"OK: already at {after}")


@db_app.command("status")
def db_status() -> None:
    """Show the database's schema revision and this kefu's newest."""
    from bot.storage import schema
    from sqlalchemy import create_engine

    engine = create_engine(settings().database_url, hide_parameters=True)
    with engine.connect() as conn:
        print(f"{schema.state(conn)}: database {schema.revision(conn) or '-'}, this kefu {schema.head()}")


GRADED = Path(__file__).resolve().parent.parent / "tests" / "data" / "training_graded.yaml"


@app.command("eval-training")
def eval_training(
    data: Path = typer.Option(GRADED, help="The graded replies (tests/data/training_graded.yaml)."),
    content: Optional[Path] = typer.Option(None, help="Content folder (default: the configured one)."),
    show: int = typer.Option(20, help="How many misranked pairs, missed moves and false alarms to list."),
) -> None:
    """Measure the training scorer on graded replies: pairwise ranking accuracy and forbidden moves caught."""
    from dialogs.practice.evaluation import evaluate, format_report, load_graded

    _, training = _training(content or settings().content_dir)
    graded = load_graded(data)
    scenarios = {(g.category, g.scenario) for g in graded}
    print(f"{len(graded)} graded replies for {len(scenarios)} scenarios ({data.name})")
    print(format_report(evaluate(training, graded), show=show))


report_app = typer.Typer(no_args_is_help=True, help="The manual's reports: the 15-day damage/shortage report and the monthly analysis.")
app.add_typer(report_app, name="report")


class ReportFormat(str, Enum):
    table = "table"
    csv = "csv"
    xlsx = "xlsx"


REPORT_FORMAT = typer.Option(ReportFormat.table, "--format", help="table (the terminal), csv (UTF-8 with BOM) or xlsx.")
REPORT_OUTPUT = typer.Option(None, "--output", help="Write the file here (xlsx needs it; default: standard output).")


def _reports():
    from bot.reports import Reports

    service = _service(create=False)
    return Reports(service.store.db, service.content, service.engine.zone)


def _day(text: Optional[str], option: str):
    from datetime import date

    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise typer.BadParameter(f"not a date: {text!r} (expected YYYY-MM-DD)", param_hint=option)


def _write_report(tables, fmt: ReportFormat, output: Optional[Path]) -> None:
    from bot.reports import csv_bytes, text_lines, xlsx_bytes

    if fmt is ReportFormat.table and output is None:
        print("\n".join(text_lines(tables)))
        return
    if fmt is ReportFormat.xlsx and output is None:
        raise typer.BadParameter("an Excel file needs --output PATH", param_hint="--output")
    data = {ReportFormat.csv: csv_bytes, ReportFormat.xlsx: xlsx_bytes}.get(fmt)
    payload = data(tables) if data else ("\n".join(text_lines(tables)) + "\n").encode("utf-8")
    if output is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.flush()
    else:
        output.write_bytes(payload)
        print(f"OK: {tables[0].title}, {len(tables[0].rows)} row(s), written to {output}", file=sys.stderr)


@report_app.command("damage")
def report_damage(
    start: Optional[str] = typer.Option(None, "--from", help="First day, YYYY-MM-DD (default: the current half month's, the 1st or the 16th)."),
    end: Optional[str] = typer.Option(None, "--to", help="Last day, YYYY-MM-DD, included (default: the half month's last)."),
    fmt: ReportFormat = REPORT_FORMAT,
    output: Optional[Path] = REPORT_OUTPUT,
) -> None:
    """The 15-day damage/shortage report (货损货差十五日报表): the cases, by branch, with amounts, status and totals."""
    from bot.reports import Period, half_month

    reports = _reports()
    first, last = _day(start, "--from"), _day(end, "--to")
    around = half_month(first or last or reports.today())
    period = Period(first or around.start, last or around.end)
    if period.start > period.end:
        raise typer.BadParameter(f"--from {period.start} is after --to {period.end}", param_hint="--from")
    try:
        report = reports.damage(period)
    except ValueError as exc:
        _fail(str(exc))
    _write_report(report.tables(), fmt, output)


@report_app.command("monthly")
def report_monthly(
    month: Optional[str] = typer.Option(None, "--month", help="YYYY-MM (default: the current month)."),
    fmt: ReportFormat = REPORT_FORMAT,
    output: Optional[Path] = REPORT_OUTPUT,
) -> None:
    """The monthly analysis by category: cases, causes as collected, handling steps reached, time to close, open and overdue."""
    from bot.reports import parse_month

    reports = _reports()
    try:
        period = parse_month(month) if month else None
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--month")
    _write_report(reports.monthly(period).tables(), fmt, output)


drafts_app = typer.Typer(no_args_is_help=True, help="Drafts to confirm: the content's own texts, step roles and deadlines, for supervisors.")
app.add_typer(drafts_app, name="drafts")


class DraftStatus(str, Enum):
    open = "open"
    reviewed = "reviewed"
    confirmed = "confirmed"
    all = "all"


def _drafts():
    from bot.drafts import Drafts

    service = _service(create=False)
    return Drafts(service.store.db, service.content)


@drafts_app.command("list")
def drafts_list(
    status: DraftStatus = typer.Option(DraftStatus.all, help="open (no word yet), reviewed (stored, not yet applied), confirmed (in the content), or all."),
    category: Optional[str] = typer.Option(None, help="Only this category or fee topic."),
) -> None:
    """List the drafts: key, kind, place in the flow, times customers saw it in 30 days, the supervisor's word, the text."""
    shown = 0
    for line in _drafts().listing():
        d = line.draft
        if (status is not DraftStatus.all and line.status != status.value) or (category and d.category != category):
            continue
        seen = "-" if line.seen is None else str(line.seen)
        word = ""
        if d.confirmed is not None:
            word = f"已确认 {d.confirmed.by} {d.confirmed.at}"
        elif line.review is not None:
            r = line.review
            word = (f"{'确认' if r.decision == 'confirmed' else '修改为「' + (r.correction or '') + '」'} {r.reviewer} "
                    f"{r.at:%Y-%m-%d %H:%M}{'（原文已变，需重新审核）' if line.stale else ''}")
            if r.comment:
                word += f"：{r.comment}"
        print("\t".join([d.key, d.kind, d.place, seen, word or "待确认", d.value.replace("\n", "⏎")]))
        shown += 1
    if not shown:
        print("kefu: no drafts match", file=sys.stderr)


BY = typer.Option(..., "--by", help="Who confirms or corrects (the supervisor's name).")
COMMENT = typer.Option(None, "--comment", help="Why, for the maintainer and the next supervisor.")


@drafts_app.command("confirm")
def drafts_confirm(key: str = typer.Argument(..., help="The draft's key (kefu drafts list)."), by: str = BY,
                   comment: Optional[str] = COMMENT) -> None:
    """Store a supervisor's confirmation of a draft as it stands."""
    from bot.drafts import DraftError

    try:
        review = _drafts().confirm(key, by, comment)
    except DraftError as exc:
        _fail(str(exc))
    print(f"OK: {review.key} confirmed by {review.reviewer}")


@drafts_app.command("correct")
def drafts_correct(key: str = typer.Argument(..., help="The draft's key (kefu drafts list)."), by: str = BY,
                   value: str = typer.Option(..., "--value", help="The corrected text, role id or deadline in hours."),
                   comment: Optional[str] = COMMENT) -> None:
    """Store a supervisor's correction of a draft (checked before it is stored)."""
    from bot.drafts import DraftError

    try:
        review = _drafts().correct(key, by, value, comment)
    except DraftError as exc:
        _fail(str(exc))
    print(f"OK: {review.key} {review.decision} by {review.reviewer}")


@drafts_app.command("export")
def drafts_export(output: Path = typer.Option(..., "--output", help="The YAML patch to write.")) -> None:
    """Write the stored confirmations and corrections not yet in the content as a YAML patch."""
    text, count, left_out = _drafts().export()
    for line in left_out:
        print(f"kefu: left out {line}", file=sys.stderr)
    output.write_text(text, encoding="utf-8")
    print(f"OK: {count} change(s) written to {output}; apply with kefu drafts apply {output}")


@drafts_app.command("apply")
def drafts_apply(path: Path = typer.Argument(..., help="A patch written by kefu drafts export."),
                 content: Optional[Path] = typer.Option(None, help="Content folder (default: the configured one).")) -> None:
    """Write a drafts patch into the content files: all of it, validated, or nothing."""
    from bot.drafts import apply_patch
    from dialogs.drafts import PatchConflict

    folder = content or settings().content_dir
    try:
        count, files = apply_patch(path.read_text(encoding="utf-8"), folder)
    except PatchConflict as exc:
        _fail(f"nothing written: {exc}")
    except ContentError as exc:
        _print_problems(exc)
        print("kefu: nothing written: the patched content would not validate", file=sys.stderr)
        raise typer.Exit(1)
    print(f"OK: {count} change(s) applied to {', '.join(files) or 'no file'} in {folder}")


@app.command()
def bench(
    turns: Optional[int] = typer.Option(None, "--turns", min=6, help="Turns per SQLite conversation kind and per PostgreSQL worker (default 3000)."),
    quick: bool = typer.Option(False, "--quick", help="Small numbers: a check that every section runs, not a measurement."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of the table."),
    postgres: Optional[str] = typer.Option(None, "--postgres", help="A PostgreSQL server URL (postgresql://user@host:port); default: start a throwaway local one."),
) -> None:
    """Measure kefu's speed, memory and start-up against reference peers, in one run (temporary databases)."""
    from bot import bench as measure

    sizes = measure.Sizes.quick() if quick else measure.Sizes()
    if turns is not None:
        sizes.turns = turns
    figures = measure.run(settings(), sizes, postgres, progress=lambda step: print(f"kefu bench: {step} …", file=sys.stderr, flush=True))
    print(json.dumps(figures, ensure_ascii=False) if as_json else measure.table(figures))


# -- the supervisor pages (bot/web/) ------------------------------------------------------------

@app.command()
def web(
    host: str = typer.Option("127.0.0.1", help="The address to listen on (default: this machine only)."),
    port: int = typer.Option(8000, min=1, max=65535, help="The port to listen on."),
) -> None:
    """Serve the supervisor pages: cases and transcripts, the dashboard, training results, failed updates."""
    from datetime import timedelta

    import uvicorn

    from bot.web.app import create_app

    application = create_app(_service(create=False), timedelta(hours=settings().grace_hours))
    print(f"kefu: supervisor pages on http://{host}:{port}/ (kefu user add NAME --role supervisor makes a sign-in)",
          file=sys.stderr)
    uvicorn.run(application, host=host, port=port, log_level="warning", proxy_headers=False)


user_app = typer.Typer(no_args_is_help=True, help="Who may sign in to the supervisor pages (kefu web).")
app.add_typer(user_app, name="user")


@user_app.command("add")
def user_add(
    name: str = typer.Argument(..., help="The sign-in name (for staff: also the trainee name of their training)."),
    role: str = typer.Option(..., help="admin, supervisor or staff."),
    telegram_id: Optional[int] = typer.Option(None, help="Their Telegram id (kefu staff add): staff see the cases assigned to it."),
) -> None:
    """Add a user, or change one's role and password; the password is read from standard input."""
    import getpass

    from bot.web.auth import UserError, add_user

    if sys.stdin.isatty():
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            _fail("the two passwords differ; nothing changed")
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        user = add_user(_database(), name, role, password, telegram_id)
    except UserError as exc:
        _fail(str(exc))
    print(f"OK: {user.name} {user.role}" + (f" telegram_id={user.telegram_id}" if user.telegram_id else ""))
