"""Settings: defaults, then a kefu.toml file, then KEFU_* environment variables (which win)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from dialogs.content import DEFAULT_DIR


class StaffConfig(BaseModel):
    """A staff member declared in kefu.toml ([[staff]] tables); merged into the database at start."""

    telegram_id: int
    role: str = "staff"
    chat_id: int | None = None
    handles: list[str] = []


def _named(name: str) -> AliasChoices:
    # Telegram's own variable names, as the issue and every PTB deployment guide spell them.
    return AliasChoices(name.lower(), name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFU_", extra="forbid")

    database_url: str = "sqlite:///kefu.db"
    content_dir: Path = DEFAULT_DIR
    staff: list[StaffConfig] = []
    grace_hours: float = 2.0  # after a missed deadline's reminder, how long before the case moves up a step

    # -- Telegram (kefu telegram) ---------------------------------------------------------------
    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_named("TELEGRAM_BOT_TOKEN"))
    # A self-hosted Bot API server (or the tests' emulator), e.g. http://127.0.0.1:8081; empty: Telegram's.
    telegram_api_base_url: str | None = Field(None, validation_alias=_named("TELEGRAM_API_BASE_URL"))
    # Webhook mode when set: the public https URL Telegram posts updates to; long polling otherwise.
    telegram_webhook_url: str | None = None
    telegram_listen: str = "0.0.0.0"  # the address and port the webhook server listens on
    telegram_port: int = 8443
    # Telegram sends it with every webhook request and kefu refuses requests without it;
    # when not set, kefu makes a new random one at each start.
    telegram_secret_token: SecretStr | None = None
    telegram_deadline_seconds: float = 60.0  # how often case deadlines are checked
    telegram_burst: int = 5  # messages a customer may send at once before being asked to slow down
    telegram_rate: float = 1.0  # ... and how many a second after that

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("KEFU_CONFIG", "kefu.toml"))
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
