"""Who may do what on the supervisor pages: the roles a web user can have, and those that see everyone's
work (their tables, web_users and case_marks, are in bot/storage/tables.py)."""

from __future__ import annotations

WEB_ROLES = ("admin", "supervisor", "staff")
SEE_ALL = ("admin", "supervisor")  # every case, every trainee, every phone number
