"""``harmony config check``: the effective settings, checked as a start checks them.

Secrets are never printed, only where they come from: "set (from file …)", "set (from
HARMONY_MATRIX__PASSWORD)", "set (in the configuration file)" or "not set". A database
URL is shown without its password.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from harmony_matrix.config import ENV_PREFIX, Config
from harmony_matrix.i18n import Message, _
from harmony_matrix.running import PartName, Say, check_config


def report(
    config: Config, parts: frozenset[PartName], say: Say, *, environ: Mapping[str, str]
) -> int:
    """Check ``config`` for ``parts`` (raises InvalidInput naming the option), then print
    a summary; 0 when a start would get past its checks."""
    check_config(config, parts)
    party, matrix, web, security = config.party, config.matrix, config.web, config.security

    def secret(setting: str, value: object, file: str) -> Message:
        section, _dot, key = setting.partition(".")
        variable = f"{ENV_PREFIX}{section.upper()}__{key.upper()}"
        if not value:
            return _("not set")
        if file:
            return _("set (from file %(path)s)", path=file)
        if environ.get(variable):
            return _("set (from %(variable)s)", variable=variable)
        return _("set (in the configuration file)")

    lines: list[tuple[str, object]] = [
        ("party.name", party.name),
        ("party.timezone", party.timezone),
        ("party.default_language", party.default_language),
        ("database.url", _without_password(config.database.url)),
    ]
    if PartName.BOT in parts:
        lines += [
            ("matrix.homeserver", matrix.homeserver),
            ("matrix.user_id", matrix.user_id),
            ("matrix.password", secret("matrix.password", matrix.password, matrix.password_file)),
            (
                "matrix.access_token",
                secret("matrix.access_token", matrix.access_token, matrix.access_token_file),
            ),
            ("matrix.store_path", matrix.store_path),
            (
                "matrix.health",
                f"{matrix.health_host}:{matrix.health_port}" if matrix.health_port else _("off"),
            ),
        ]
    if PartName.WEB in parts:
        lines += [
            ("web.listen", f"{web.host}:{web.port}"),
            ("web.public_base_url", web.public_base_url),
            ("web.metrics", _("served at /metrics") if web.metrics else _("off")),
        ]
    lines += [
        (
            "security.secret_key",
            secret("security.secret_key", security.key(), security.secret_key_file),
        ),
        ("security.ballot_keys_path", security.ballot_keys_path),
    ]
    width = max(len(name) for name, _value in lines)
    for name, value in lines:
        say(_("%(setting)s: %(value)s", setting=name.ljust(width), value=value))
    say(
        _(
            "The configuration is valid for: %(parts)s.",
            parts=", ".join(sorted(str(part) for part in parts)),
        )
    )
    return 0


def _without_password(url: str) -> str:
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url.split("@")[-1]  # not a URL SQLAlchemy reads: never show what precedes @
