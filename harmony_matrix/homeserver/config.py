"""The homeserver.yaml of a local test or demo server, written into a directory.

The files are JSON, which YAML reads as well: no YAML library is needed on our side.
Writing again into the same directory keeps its signing key and secrets, so a demo server
keeps its users' tokens across restarts.
"""

from __future__ import annotations

import json
import secrets
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Loose enough that no test or demo ever waits on a 429: nio sleeps on each one and
#: retries, which turned 30 quick messages into 105 s with Synapse's defaults.
_UNLIMITED = {"per_second": 10_000, "burst_count": 100_000}

RATE_LIMITS: dict[str, Any] = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_registration_token_validity": _UNLIMITED,
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_admin_redaction": _UNLIMITED,
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_3pid_validation": _UNLIMITED,
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_third_party_invite": _UNLIMITED,
    "rc_key_requests": _UNLIMITED,
    "rc_media_create": _UNLIMITED,
    "rc_presence": {"per_user": _UNLIMITED},
    "rc_delayed_event_mgmt": _UNLIMITED,
    "rc_room_creation": _UNLIMITED,
    "rc_reports": _UNLIMITED,
    "rc_user_directory": _UNLIMITED,
    "rc_profile": _UNLIMITED,
    # Not a per_second/burst_count setting: Synapse's FederationRatelimitSettings.
    "rc_federation": {
        "window_size": 1000,
        "sleep_limit": 10_000,
        "sleep_delay": 0,
        "reject_limit": 100_000,
        "concurrent": 100,
    },
    "federation_rr_transactions_per_room_per_second": 10_000,
}

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True)
class ServerConfig:
    """What differs between two local homeservers.

    Without a federation port the server is called ``localhost`` and talks to no other
    server. With one, it is ``localhost:PORT`` (an explicit port: no .well-known or SRV
    lookup) and federates over TLS with the ``federation_peers`` (their server names).
    """

    directory: Path
    client_port: int
    federation_port: int | None = None
    federation_peers: tuple[str, ...] = field(default=())

    @property
    def server_name(self) -> str:
        if self.federation_port is None:
            return "localhost"
        return f"localhost:{self.federation_port}"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.client_port}"

    @property
    def config_path(self) -> Path:
        return self.directory / "homeserver.yaml"

    @property
    def log_path(self) -> Path:
        return self.directory / "homeserver.log"


def write_config(config: ServerConfig, python: Path) -> dict[str, Any]:
    """Write homeserver.yaml (and its key, certificate and log config) into the directory.

    ``python`` is the interpreter of Synapse's venv, which makes the signing key.
    Returns the settings written.
    """
    directory = config.directory
    directory.mkdir(parents=True, exist_ok=True)
    signing_key = directory / "signing.key"
    if not signing_key.exists():
        _run([str(python), "-m", "synapse._scripts.generate_signing_key", "-o", str(signing_key)])
    (directory / "media").mkdir(exist_ok=True)
    log_config = directory / "log_config.yaml"
    log_config.write_text(json.dumps(_log_config(config.log_path), indent=2), encoding="utf-8")

    settings: dict[str, Any] = {
        "server_name": config.server_name,
        "public_baseurl": config.url + "/",
        "pid_file": str(directory / "homeserver.pid"),
        "listeners": [
            {
                "port": config.client_port,
                "bind_addresses": [LOOPBACK],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(directory / "homeserver.db")}},
        "media_store_path": str(directory / "media"),
        "signing_key_path": str(signing_key),
        "log_config": str(log_config),
        "report_stats": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "enable_registration": False,
        **_secrets(directory),
        # Hashing test passwords at the default cost would slow every registration.
        "bcrypt_rounds": 4,
        "presence": {"enabled": False},
        "url_preview_enabled": False,
        "enable_metrics": False,
        # Empty: no outbound federation at all.
        "federation_domain_whitelist": [],
        **RATE_LIMITS,
    }
    if config.federation_port is not None:
        settings.update(_federation(config, settings["listeners"]))
    config.config_path.write_text(json.dumps(settings, indent=2), encoding="utf-8")
    return settings


def _federation(config: ServerConfig, listeners: list[dict[str, Any]]) -> dict[str, Any]:
    certificate, private_key = _self_signed_certificate(config.directory)
    federation_listener = {
        "port": config.federation_port,
        "bind_addresses": [LOOPBACK],
        "type": "http",
        "tls": True,
        "x_forwarded": False,
        "resources": [{"names": ["federation"], "compress": False}],
    }
    return {
        "listeners": [*listeners, federation_listener],
        "tls_certificate_path": str(certificate),
        "tls_private_key_path": str(private_key),
        # The peers' certificates are self-signed too.
        "federation_verify_certificates": False,
        "federation_domain_whitelist": [config.server_name, *config.federation_peers],
        # Without it Synapse refuses to reach loopback addresses (and reports it as a
        # DNS error).
        "ip_range_whitelist": ["127.0.0.0/8", "::1/128"],
    }


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    certificate = directory / "tls.crt"
    private_key = directory / "tls.key"
    if not (certificate.exists() and private_key.exists()):
        _run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "30",
                "-subj",
                "/CN=localhost",
                "-keyout",
                str(private_key),
                "-out",
                str(certificate),
            ]
        )
    return certificate, private_key


def _secrets(directory: Path) -> dict[str, str]:
    """The server's secrets, made once per directory and kept in it."""
    path = directory / "secrets.json"
    if path.exists():
        kept: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return kept
    made = {
        name: secrets.token_urlsafe(32)
        for name in ("registration_shared_secret", "macaroon_secret_key", "form_secret")
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(made), encoding="utf-8")
    return made


def _log_config(log_path: Path) -> dict[str, Any]:
    return {
        "version": 1,
        "formatters": {
            "precise": {
                "format": "%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - "
                "%(request)s - %(message)s"
            }
        },
        "handlers": {
            "file": {
                "class": "logging.FileHandler",
                "formatter": "precise",
                "filename": str(log_path),
                "encoding": "utf8",
            }
        },
        "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
        "root": {"level": "INFO", "handlers": ["file"]},
        "disable_existing_loggers": False,
    }


def _run(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(
            f"{command[0]} failed with exit status {result.returncode}: {result.stderr.strip()}"
        )
