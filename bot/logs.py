"""Logging for every kefu command: one handler on stderr, text or JSON lines, other libraries quiet,
and no customer data: phones and waybills are masked and message text is left out unless --log-pii."""

from __future__ import annotations

import logging
import re
import sys
from typing import TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

# Libraries that log every request or state change at INFO; kefu's own lines say what matters.
QUIET = ("transitions", "httpx", "httpcore", "telegram", "apscheduler", "sqlalchemy", "aiohttp", "tornado")
KEFU = "kefu"

# Mainland mobiles (138 0013 8000, +86…) and landlines with an area code (0591-87654321).
# ASCII word characters only around a number: in Chinese text a phone follows a character (我的电话13812345678).
_PHONE = re.compile(r"(?<![A-Za-z0-9_+])(?:\+?86[- ]?)?(1[3-9]\d)[- ]?(\d{4})[- ]?(\d{4})(?!\d)|(?<![A-Za-z0-9_-])(0\d{2,3})-?(\d{7,8})(?!\d)")
# Waybill numbers as shared.yaml's fact type reads them: up to four letters, 6 to 16 digits. A number
# right after '-' is part of a case number (KF-20261127-0001) or a group's chat id, which logs need.
_WAYBILL = re.compile(r"(?<![A-Za-z0-9_-])([A-Za-z]{0,4})(\d{6,16})(?![A-Za-z0-9_])")

_pii = False  # --log-pii: log customers' words and numbers as they are


_ROW_DETAIL = re.compile(r"\s*DETAIL:.*?(?=\s*\[SQL|\s*\(Background|$)", re.S | re.M)


def scrub(text: str) -> str:
    """An error's text without what may quote customer data: a database's DETAIL (the failing row, the
    duplicate key) is dropped, phones and waybills are masked."""
    return mask(_ROW_DETAIL.sub(" DETAIL: (hidden)", text))


def mask_phones(text: str) -> str:
    """Hides phone numbers only (138****8000, 0591-****21): for readers who need the waybill but not the phone."""
    def phone(m: re.Match) -> str:
        if m.group(1):
            return f"{m.group(1)}****{m.group(3)}"
        return f"{m.group(4)}-****{m.group(5)[-2:]}"

    return _PHONE.sub(phone, text)


def mask(text: str) -> str:
    """Hides phones (138****8000) and waybills (SH20****27) in a log line."""
    def waybill(m: re.Match) -> str:
        digits = m.group(2)
        return f"{m.group(1)}{digits[:2]}{'*' * (len(digits) - 4)}{digits[-2:]}"

    return _WAYBILL.sub(waybill, mask_phones(text))


class Private:
    """Customer words (a rating reason, a message) in a log call: shown only with --log-pii."""

    def __init__(self, text: str):
        self.text = text

    def __str__(self) -> str:
        return self.text if _pii else f"<{len(self.text)} characters hidden; --log-pii shows them>"


class Redact(logging.Filter):
    """Masks phones and waybills, and the bot token, in every line the handler writes (tracebacks too)."""

    def __init__(self, pii: bool):
        super().__init__()
        self.pii = pii
        self.secrets: list[str] = []
        self._formatter = logging.Formatter()

    def _clean(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "<token>")
        return text if self.pii else mask(text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self._clean(record.getMessage()), None
        if record.exc_info:
            # Formatted here so the mask applies; both formatters print exc_text when exc_info is gone.
            record.exc_text = self._clean(self._formatter.formatException(record.exc_info))
            record.exc_info = None
        return True


class TextFormatter(logging.Formatter):
    """One line per record; the fields kefu passes with `extra=` (ids, never customer words) follow as key=value."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        fields = " ".join(f"{k}={v}" for k, v in record.__dict__.items() if k not in RESERVED_ATTRS and k not in ("message", "taskName"))
        line = super().formatMessage(record)
        return f"{line} {fields}" if fields else line


_redact: Redact | None = None


def configure(debug: bool = False, json_lines: bool = False, pii: bool = False, stream: TextIO | None = None) -> None:
    """Sets up logging once per process: kefu's lines at INFO (DEBUG with --debug), other libraries at
    WARNING (INFO with --debug), text or one JSON object per line, customer data masked."""
    global _pii, _redact
    _pii = pii
    handler = logging.StreamHandler(stream or sys.stderr)
    if json_lines:
        handler.setFormatter(JsonFormatter("{asctime}{levelname}{name}{message}", style="{",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    _redact = Redact(pii)
    handler.addFilter(_redact)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO if debug else logging.WARNING)
    logging.getLogger(KEFU).setLevel(logging.DEBUG if debug else logging.INFO)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.INFO if debug else logging.WARNING)


def hide(secret: str) -> None:
    """Keeps a secret (the bot token: httpx and others print request URLs) out of every log line."""
    if _redact is not None and secret:
        _redact.secrets.append(secret)
