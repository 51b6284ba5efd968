"""Settings: defaults, then a kefu.toml file, then KEFU_* environment variables (which win); checked
at start, each problem said in one line that names the setting, where it came from and what it takes."""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, BaseModel, Field, PrivateAttr, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, TomlConfigSettingsSource

from dialogs.content import DEFAULT_DIR


class SettingsError(Exception):
    """Settings kefu cannot start with: one line per problem, for the operator."""

    def __init__(self, lines: list[str]):
        super().__init__("\n".join(lines))
        self.lines = lines


class StaffConfig(BaseModel):
    """A staff member declared in kefu.toml ([[staff]] tables); merged into the database at start."""

    telegram_id: int
    role: str = "staff"
    chat_id: int | None = None
    handles: list[str] = []


def _named(name: str) -> AliasChoices:
    # Telegram's own variable names, as the issue and every PTB deployment guide spell them.
    return AliasChoices(name.lower(), name)


def config_file() -> Path:
    """The kefu.toml in use: the file KEFU_CONFIG names, else kefu.toml in the current folder."""
    return Path(os.environ.get("KEFU_CONFIG", "kefu.toml"))


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="KEFU_", extra="forbid")

    # A relative SQLite path counts from kefu.toml's folder when set there, else from the current folder.
    database_url: str = "sqlite:///kefu.db"
    content_dir: Path = DEFAULT_DIR
    # The trained router, kept per version of the content so that a start answers free text at once.
    cache_dir: Path | None = Field(default_factory=lambda: Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kefu")
    # SQLite only: how a commit reaches the disk. normal: written to the operating system at each commit
    # (a killed or crashed kefu loses nothing), flushed to the disk at each checkpoint (a power cut or a
    # crash of the machine may undo the last commits, never corrupt the file); full: flushed at each commit
    # (power cuts too lose nothing), at a disk flush a turn.
    sqlite_synchronous: str = "full"  # the safe default; normal is a choice an operator makes
    staff: list[StaffConfig] = []
    grace_hours: float = Field(2.0, ge=0)  # after a missed deadline's reminder, how long before the case moves up a step
    # Closed conversations' personal data is erased this many days after their last message; none: kept.
    retention_days: int | None = Field(None, ge=1)

    # -- Telegram (kefu telegram) ---------------------------------------------------------------
    telegram_bot_token: SecretStr | None = Field(None, validation_alias=_named("TELEGRAM_BOT_TOKEN"))
    # A self-hosted Bot API server (or the tests' emulator), e.g. http://127.0.0.1:8081; empty: Telegram's.
    telegram_api_base_url: str | None = Field(None, validation_alias=_named("TELEGRAM_API_BASE_URL"))
    # Webhook mode when set: the public https URL Telegram posts updates to; long polling otherwise.
    telegram_webhook_url: str | None = None
    telegram_listen: str = "0.0.0.0"  # the address and port the webhook server listens on
    telegram_port: int = Field(8443, ge=1, le=65535)
    # Telegram sends it with every webhook request and kefu refuses requests without it;
    # when not set, kefu makes a new random one at each start.
    telegram_secret_token: SecretStr | None = None
    telegram_deadline_seconds: float = Field(60.0, gt=0)  # how often case deadlines are checked
    telegram_burst: int = Field(5, ge=1)  # messages a customer may send at once before being asked to slow down
    telegram_rate: float = Field(1.0, gt=0)  # ... and how many a second after that
    # An update whose handling fails is tried again after retry_seconds, then 6x longer each time;
    # after telegram_attempts tries it is dead-lettered (kefu inbox lists it; supervisors are told).
    telegram_attempts: int = Field(4, ge=1, le=20)
    telegram_retry_seconds: float = Field(10.0, gt=0)

    _origins: dict[str, str] = PrivateAttr(default_factory=dict)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = make_url(value)
        except ArgumentError:
            raise ValueError("expected a database URL such as sqlite:///kefu.db or postgresql://user@host/kefu") from None
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")  # the driver kefu installs, not SQLAlchemy's default psycopg2
        try:
            url.get_dialect().import_dbapi()
        except NoSuchModuleError:
            raise ValueError(f"unknown database kind '{url.drivername}': expected sqlite:///… or postgresql://…") from None
        except ImportError as exc:
            raise ValueError(f"the driver for {url.drivername} is not installed ({exc.name}); "
                             "use postgresql://…, which kefu's own driver (psycopg) serves") from None
        return url.render_as_string(hide_password=False)

    @field_validator("sqlite_synchronous")
    @classmethod
    def _synchronous(cls, value: str) -> str:
        if value.strip().lower() not in ("normal", "full"):
            raise ValueError("expected normal or full")
        return value.strip().lower()

    @field_validator("telegram_bot_token")
    @classmethod
    def _token(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip() and ":" not in value.get_secret_value():
            raise ValueError("expected the token @BotFather gave, of the form 123456789:AA…")
        return value

    @field_validator("telegram_webhook_url")
    @classmethod
    def _webhook(cls, value: str | None, info: ValidationInfo) -> str | None:
        # Telegram's servers post only to https; a self-hosted Bot API server (--local) also to http.
        if value and not value.startswith("https://") and not (
                value.startswith("http://") and info.data.get("telegram_api_base_url")):
            raise ValueError("expected a public https:// URL (Telegram posts updates only over https)")
        return value or None

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource, dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_file())

    def origin(self, name: str) -> str:
        """Where a setting came from, as the operator would look for it and change it."""
        return self._origins.get(name) or f"the default; {_env_name(name)} or {name} in kefu.toml changes it"


def _env_name(name: str) -> str:
    field = Settings.model_fields[name]
    alias = field.validation_alias
    return alias.choices[-1] if isinstance(alias, AliasChoices) else f"KEFU_{name.upper()}"  # type: ignore[return-value]


def _expected(error: dict) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    words = {
        "float_parsing": "expected a number", "float_type": "expected a number",
        "int_parsing": "expected a whole number", "int_type": "expected a whole number",
        "int_from_float": "expected a whole number", "bool_parsing": "expected true or false",
        "greater_than": f"expected a number above {ctx.get('gt')}",
        "greater_than_equal": f"expected a number of at least {ctx.get('ge')}",
        "less_than_equal": f"expected a number of at most {ctx.get('le')}",
        "string_type": "expected text", "list_type": "expected a list", "missing": "required",
        "extra_forbidden": "not a kefu setting",
    }
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return words.get(kind, error["msg"])


def load_settings() -> Settings:
    """Reads and checks the settings; SettingsError names every setting that is wrong."""
    path = config_file().absolute()
    explicit = "KEFU_CONFIG" in os.environ
    if explicit and not path.is_file():
        raise SettingsError([f"KEFU_CONFIG names {path}, which is not a file"])
    table: dict[str, Any] = {}
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError([f"{path} is not valid TOML: {exc}"]) from None
    origins = {}
    for name in Settings.model_fields:
        env = _env_name(name)
        if env in os.environ or env.lower() in os.environ:
            origins[name] = f"{env} in the environment"
        elif name in table:
            origins[name] = f"{name} in {path}"
    try:
        settings = Settings()
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else "?"
            if error["type"] == "extra_forbidden":
                near = difflib.get_close_matches(name, Settings.model_fields, n=1)
                hint = f" (did you mean {near[0]}?)" if near else ""
                lines.append(f"{name} in {path}: not a kefu setting{hint}")
                continue
            name = name if name in Settings.model_fields else name.lower()
            detail = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"][1:])
            where = f"{name}{detail} in {path}" if origins.get(name, "").startswith(f"{name} in ") \
                else f"{origins.get(name, name)}{detail}"
            secret = name in ("telegram_bot_token", "telegram_secret_token", "database_url") or "input" not in error
            shown = "" if secret else f" is {error['input']!r}"
            lines.append(f"{where}{shown}: {_expected(error)}")
        raise SettingsError(lines) from None
    base = path.resolve().parent
    if "database_url" in table and "database_url" not in os.environ and "KEFU_DATABASE_URL" not in os.environ:
        settings.database_url = _sqlite_from(settings.database_url, base)
    if "content_dir" in table and "KEFU_CONTENT_DIR" not in os.environ and not settings.content_dir.is_absolute():
        settings.content_dir = base / settings.content_dir
    settings._origins = origins
    return settings


def _sqlite_from(url: str, base: Path) -> str:
    """A relative SQLite file named in kefu.toml lives beside kefu.toml."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:" \
            and not Path(parsed.database).is_absolute():
        return parsed.set(database=str(base / parsed.database)).render_as_string(hide_password=False)
    return url
