"""Settings: defaults, then a kefu.toml file, then KEFU_* environment variables (which win)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from dialogs.content import DEFAULT_DIR


class StaffConfig(BaseModel):
    """A staff member declared in kefu.toml ([[staff]] tables); merged into the database at start."""

    telegram_id: int
    role: str = "staff"
    chat_id: int | None = None
    handles: list[str] = []


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFU_", extra="forbid")

    database_url: str = "sqlite:///kefu.db"
    content_dir: Path = DEFAULT_DIR
    staff: list[StaffConfig] = []
    grace_hours: float = 2.0  # after a missed deadline's reminder, how long before the case moves up a step

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("KEFU_CONFIG", "kefu.toml"))
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=toml_file)
