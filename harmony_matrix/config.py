"""One typed configuration, from a TOML file plus ``HARMONY_SECTION__KEY`` variables.

Errors name the setting: "Error in configuration at 'rules.petition_share': ...".
"""

from __future__ import annotations

import enum
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from fractions import Fraction
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from harmony_matrix.constitution.interpretations import InvalidRule, Rules
from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import Message, _, available_languages

ENV_PREFIX = "HARMONY_"
DEFAULT_DATABASE_URL = "sqlite:///harmony.db"
#: The moderating rules are posted as one chat message; Matrix events are limited to
#: 64 KiB, and a room reads a long text badly anyway.
MAX_MODERATING_RULES = 20_000


@dataclass(frozen=True)
class PartySettings:
    name: str = "Harmony Party UK"
    #: The PREFIX of assembly references (PREFIX-ASSE-YYYY-MM-ID).
    reference_prefix: str = "HPUK"
    timezone: str = "Europe/London"
    default_language: str = "en"
    #: The party's moderating rules, posted in the room when a meeting's debate opens: a
    #: text file (Markdown-free plain text). Empty: Harmony's short default rules.
    moderating_rules_file: str = ""

    def moderating_rules(self) -> str:
        """The text of the moderating rules file, or "" when none is set (Harmony's
        default rules are used). Read once, at start-up: a file that cannot be used
        stops the start with the setting named, rather than a debate opening without
        its rules."""
        if not self.moderating_rules_file:
            return ""
        setting = "party.moderating_rules_file"
        path = self.moderating_rules_file
        try:
            data = Path(path).read_bytes()
        except OSError as error:
            raise _config_error(setting, _("cannot read %(path)s", path=path)) from error
        try:
            text = data.decode("utf-8-sig").strip()
        except UnicodeDecodeError as error:
            raise _config_error(
                setting, _("%(path)s is not UTF-8 text; save it as UTF-8", path=path)
            ) from error
        if not text:
            raise _config_error(setting, _("%(path)s is empty", path=path))
        if len(text) > MAX_MODERATING_RULES:
            raise _config_error(
                setting,
                _(
                    "%(path)s is too long to post in a chat message (at most %(limit)s characters)",
                    path=path,
                    limit=MAX_MODERATING_RULES,
                ),
            )
        return text


@dataclass(frozen=True)
class DatabaseSettings:
    url: str = DEFAULT_DATABASE_URL


@dataclass(frozen=True)
class MatrixSettings:
    homeserver: str = "http://127.0.0.1:8008"
    user_id: str = ""
    #: Secrets: never in a repr, a log line or an error message.
    password: str = field(default="", repr=False)
    #: A file holding the password (read at start-up, surrounding blanks removed), for
    #: container secrets; not together with ``password``.
    password_file: str = ""
    access_token: str = field(default="", repr=False)
    access_token_file: str = ""
    device_name: str = "Harmony"
    store_path: str = "var/matrix-store"
    command_prefix: str = "!"
    #: A command older than this when the bot reads it (it was down) is not acted on: the
    #: sender is asked to send it again, since the situation may have changed.
    offline_window_minutes: int = 60
    #: How long an encrypted message the bot cannot decrypt yet waits for its key before
    #: the bot tells the sender it could not read it.
    undecryptable_grace_seconds: int = 60
    #: New assembly rooms and direct messages are end-to-end encrypted.
    encrypt_rooms: bool = True
    #: How often the bot brings rooms in step with the register (a register import is
    #: picked up within this time; a linked room and a suspension at once).
    reconcile_minutes: int = 5
    #: The bot's health and metrics port (/healthz, /readyz, /metrics); 0: none. It
    #: shows no secret, but keep it off the internet: only a monitor needs it.
    health_port: int = 0
    health_host: str = "127.0.0.1"

    def check_for_bot(self) -> None:
        """The settings the bot cannot start without, named when missing or wrong."""
        if not self.user_id:
            raise _config_error(
                "matrix.user_id", _("the bot's Matrix ID is needed, e.g. @harmony:example.org")
            )
        if not self.homeserver.startswith(("http://", "https://")):
            raise _config_error("matrix.homeserver", _("must start with http:// or https://"))
        if not self.password and not self.access_token:
            raise _config_error(
                "matrix.password", _("set a password or an access token (matrix.access_token)")
            )
        if not self.command_prefix or any(c.isspace() for c in self.command_prefix):
            raise _config_error("matrix.command_prefix", _("one or more characters, no spaces"))
        for name in ("offline_window_minutes", "undecryptable_grace_seconds", "reconcile_minutes"):
            if getattr(self, name) < 1:
                raise _config_error(f"matrix.{name}", _("must be at least 1"))
        if not 0 <= self.health_port <= 65535:
            raise _config_error("matrix.health_port", _("must be from 0 to 65535"))


@dataclass(frozen=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    public_base_url: str = "http://127.0.0.1:8080"
    #: Believe X-Forwarded-For (for rate limits only) because a proxy of yours sets it.
    trust_forwarded_for: bool = False
    #: Ballot form posts allowed per client address per minute (0: no limit). Members
    #: at one venue share an address, so it is generous; each link also votes only once.
    ballot_posts_per_minute: int = 120
    #: Serve /metrics (Prometheus) on the companion's port. Off by default: a proxy in
    #: front must then not pass /metrics to the public (docker/nginx.conf refuses it).
    metrics: bool = False

    def check(self) -> None:
        if self.ballot_posts_per_minute < 0:
            raise _config_error("web.ballot_posts_per_minute", _("must be 0 or more"))
        if not self.public_base_url.startswith(("http://", "https://")):
            raise _config_error("web.public_base_url", _("must start with http:// or https://"))


@dataclass(frozen=True)
class SecuritySettings:
    #: Signs ballot links; keep it secret and stable (a new key invalidates open links).
    secret_key: str = field(default="", repr=False)
    secret_key_file: str = ""
    #: How long a ballot stays open when the secretary gives no closing time; its
    #: links work until it closes.
    ballot_open_hours: int = 72
    #: Where the private keys of open ballot rounds are kept (one small file per open
    #: round, destroyed when it is counted). Never the database's folder in a backup
    #: taken while rounds are open; the process that closes rounds needs it.
    ballot_keys_path: str = "var/ballot-keys"

    def key(self) -> bytes:
        """The secret key, from the setting or the file; empty if neither is set."""
        if self.secret_key:
            return self.secret_key.encode()
        if self.secret_key_file:
            return read_secret_file("security.secret_key_file", self.secret_key_file).encode()
        return b""


@dataclass(frozen=True)
class Config:
    party: PartySettings = field(default_factory=PartySettings)
    database: DatabaseSettings = field(default_factory=DatabaseSettings)
    matrix: MatrixSettings = field(default_factory=MatrixSettings)
    web: WebSettings = field(default_factory=WebSettings)
    security: SecuritySettings = field(default_factory=SecuritySettings)
    rules: Rules = field(default_factory=Rules)


def load_config(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Config:
    """Read ``path`` (if given), then apply ``HARMONY_SECTION__KEY`` variables on top."""
    environ = os.environ if environ is None else environ
    raw: dict[str, dict[str, Any]] = {}
    if path is not None:
        try:
            with path.open("rb") as handle:
                raw = tomllib.load(handle)
        except FileNotFoundError as error:
            raise InvalidInput(
                _("The configuration file %(path)s does not exist.", path=str(path))
            ) from error
        except IsADirectoryError as error:
            raise InvalidInput(
                _(
                    "The configuration file %(path)s is a folder. Give the harmony.toml file "
                    "itself.",
                    path=str(path),
                )
            ) from error
        except OSError as error:
            raise InvalidInput(
                _(
                    "Cannot read the configuration file %(path)s: %(reason)s.",
                    path=str(path),
                    reason=error.strerror or type(error).__name__,
                )
            ) from error
        except tomllib.TOMLDecodeError as error:
            raise InvalidInput(
                _(
                    "The configuration file %(path)s is not valid TOML: %(reason)s",
                    path=str(path),
                    reason=str(error),
                )
            ) from error
    for name, value in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _sep, key = name[len(ENV_PREFIX) :].lower().partition("__")
        raw.setdefault(section, {})[key] = value
    sections = {item.name: item for item in fields(Config)}
    built: dict[str, Any] = {}
    for section, values in raw.items():
        if section not in sections:
            raise _config_error(section, _("there is no such section"))
        if not isinstance(values, dict):
            raise _config_error(section, _("this must be a table of settings"))
        section_class = sections[section].default_factory
        built[section] = _build_section(section, section_class, values)
    config = Config(**built)
    _check(config)
    return _read_secret_files(config)


#: Settings whose values are secrets: an error about one never shows the value.
SECRET_SETTINGS = frozenset({"matrix.password", "matrix.access_token", "security.secret_key"})
#: Each secret setting and the setting naming a file that holds it instead.
SECRET_FILES = {
    "matrix.password": "matrix.password_file",
    "matrix.access_token": "matrix.access_token_file",
    "security.secret_key": "security.secret_key_file",
}


def read_secret_file(setting: str, path: str) -> str:
    """The secret in ``path``, without surrounding blanks (an editor's final newline is
    not part of a password). Errors name the setting and the file, never its content."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        raise _config_error(
            setting,
            _(
                "cannot read %(path)s: %(reason)s",
                path=path,
                reason=error.strerror or type(error).__name__,
            ),
        ) from error
    try:
        text = data.decode("utf-8").strip()
    except UnicodeDecodeError as error:
        raise _config_error(setting, _("%(path)s is not UTF-8 text", path=path)) from error
    if not text:
        raise _config_error(setting, _("%(path)s is empty", path=path))
    return text


def _read_secret_files(config: Config) -> Config:
    """Each secret from its setting or its file, never both (which would win is not
    obvious, and an operator moving a secret to a file must remove the old one)."""
    for secret, file_setting in SECRET_FILES.items():
        section, _dot, key = secret.partition(".")
        settings = getattr(config, section)
        if getattr(settings, key) and getattr(settings, file_setting.partition(".")[2]):
            raise _config_error(
                file_setting,
                _("set %(value)s or %(file)s, not both", value=secret, file=file_setting),
            )
    matrix = config.matrix
    if matrix.password_file:
        matrix = replace(
            matrix, password=read_secret_file("matrix.password_file", matrix.password_file)
        )
    if matrix.access_token_file:
        matrix = replace(
            matrix,
            access_token=read_secret_file("matrix.access_token_file", matrix.access_token_file),
        )
    # The secret key stays in its file until used (SecuritySettings.key), as before;
    # reading it here checks the file at load like the others.
    config.security.key()
    return replace(config, matrix=matrix)


def _build_section(section: str, section_class: Any, values: dict[str, Any]) -> Any:
    known = {item.name: item for item in fields(section_class)}
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise _config_error(f"{section}.{key}", _("there is no such setting"))
        default = getattr(section_class(), key)
        kwargs[key] = _coerce(f"{section}.{key}", value, default)
    try:
        return section_class(**kwargs)
    except InvalidRule as error:
        raise _config_error(f"{section}.{error.name}", error.reason) from error
    except ValueError as error:
        # Name the setting, not only the section: the first one refused on its own.
        for key, value in kwargs.items():
            try:
                section_class(**{key: value})
            except ValueError:
                raise _config_error(
                    f"{section}.{key}", _("%(reason)s", reason=str(error))
                ) from error
        raise _config_error(section, _("%(reason)s", reason=str(error))) from error


def _coerce(path: str, value: Any, default: Any) -> Any:
    """Turn a TOML value or an environment string into the type of the default."""
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "1", "yes", "on"):
                return True
            if str(value).lower() in ("false", "0", "no", "off"):
                return False
            raise ValueError(value)
        if isinstance(default, int):
            if isinstance(value, bool | float):
                raise ValueError(value)
            return int(value)
        if isinstance(default, Fraction):
            return parse_share(value)
        if isinstance(default, enum.Enum):
            return str(value)  # the section refuses an unknown value, naming the allowed ones
        if isinstance(default, str):
            if not isinstance(value, str):
                raise ValueError(value)
            return value
    except (ValueError, ZeroDivisionError) as error:
        if path in SECRET_SETTINGS:
            raise _config_error(path, _expected(default)) from error
        raise _config_error(
            path,
            _(
                "“%(value)s” is not a valid value: expected %(expected)s",
                value=value,
                expected=_expected(default),
            ),
        ) from error
    return value


def _expected(default: Any) -> Message:
    """What a setting takes, in words, for the error message."""
    if isinstance(default, bool):
        return _("true or false")
    if isinstance(default, int):
        return _("a whole number, such as %(example)s", example=default)
    if isinstance(default, Fraction):
        return _("a share, such as %(percent)s or %(decimal)s", percent="15%", decimal="0.15")
    if not default:
        return _("text in quotes")
    return _("text in quotes, such as “%(example)s”", example=default)


def parse_share(value: object) -> Fraction:
    """A share such as "15%", "0.15", 0.15 or "3/20", as an exact fraction."""
    text = str(value).strip()
    if text.endswith("%"):
        return Fraction(text[:-1].strip()) / 100
    return Fraction(text)


def _check(config: Config) -> None:
    config.web.check()
    try:
        ZoneInfo(config.party.timezone)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise _config_error("party.timezone", _("unknown timezone")) from error
    if config.party.default_language not in available_languages():
        raise _config_error(
            "party.default_language",
            _(
                "no catalog for this language; available: %(languages)s",
                languages=", ".join(available_languages()),
            ),
        )
    if not config.party.reference_prefix.isalnum():
        raise _config_error("party.reference_prefix", _("use letters and digits only"))
    user_id = config.matrix.user_id
    if user_id and not (user_id.startswith("@") and ":" in user_id):
        raise _config_error("matrix.user_id", _("must be in the form @name:domain"))


def _config_error(path: str, reason: object) -> InvalidInput:
    return InvalidInput(
        _("Error in configuration at '%(path)s': %(reason)s", path=path, reason=reason)
    )
