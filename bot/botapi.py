"""Asking the Bot API who the bot is (getMe) before anything else, so a rejected token or an
unreachable server is one clear line, not the traceback of PTB's start-up retries."""

from __future__ import annotations

import httpx

from bot.config import Settings

TELEGRAM = "https://api.telegram.org"


class BotApiError(Exception):
    """The token was refused, or the Bot API could not be reached: one line for the operator."""


def token_of(settings: Settings) -> str:
    return settings.telegram_bot_token.get_secret_value().strip() if settings.telegram_bot_token else ""


def get_me(settings: Settings, timeout: float = 10.0) -> dict:
    """The bot's own user (id, username), as the Bot API answers getMe; BotApiError otherwise."""
    base = (settings.telegram_api_base_url or TELEGRAM).rstrip("/")
    token = token_of(settings)
    try:
        response = httpx.post(f"{base}/bot{token}/getMe", timeout=timeout)
    except httpx.HTTPError as exc:
        # httpx names the URL in some messages: the token must not be in ours.
        reason = " ".join(str(exc).replace(token, "<token>").split()) or type(exc).__name__
        raise BotApiError(f"cannot reach the Telegram Bot API at {base} ({reason}): check the network"
                          f"{', or TELEGRAM_API_BASE_URL' if settings.telegram_api_base_url else ''}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code in (401, 404) or (isinstance(answer, dict) and answer.get("error_code") in (401, 404)):
        raise BotApiError(f"Telegram refused TELEGRAM_BOT_TOKEN ({settings.origin('telegram_bot_token')}): "
                          f"{answer.get('description', response.reason_phrase)}; check it with @BotFather (/token)")
    if not isinstance(answer, dict) or not answer.get("ok") or not isinstance(answer.get("result"), dict):
        raise BotApiError(f"the Telegram Bot API at {base} answered getMe with HTTP {response.status_code}, "
                          "not a bot: check TELEGRAM_API_BASE_URL")
    return answer["result"]
