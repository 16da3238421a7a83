"""The bot's Matrix session: its login, device, crypto store and sync position on disk.

Everything lives under ``[matrix] store_path``: ``credentials.json`` (the device ID and
access token of the first login, reused after, so a restart keeps the device and its
keys), nio's crypto store, and ``sync-token`` (where the bot's reading stopped). The
folder is as precious as the database: without it the bot is a new device that cannot
read the room keys of the old one.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from aiohttp import ClientError
from nio import AsyncClient, AsyncClientConfig, LoginResponse, WhoamiResponse
from nio.store import SqliteStore

from harmony_matrix.config import MatrixSettings
from harmony_matrix.errors import InvalidInput
from harmony_matrix.i18n import _

log = logging.getLogger(__name__)

CREDENTIALS = "credentials.json"
#: The homeserver's error code for an access token it no longer accepts.
UNKNOWN_TOKEN = "M_UNKNOWN_TOKEN"
SYNC_TOKEN = "sync-token"


def client_config() -> AsyncClientConfig:
    """nio retries 429s and network errors itself, forever, sleeping inside a request;
    the bot's loops back off on their own instead (and can stop while they wait)."""
    return AsyncClientConfig(
        encryption_enabled=True,
        store=SqliteStore,
        # The sync token is saved by the bot after it has handled a response, not by nio
        # when the response arrives (see SyncPosition).
        store_sync_tokens=False,
        max_limit_exceeded=0,
        max_timeouts=0,
        request_timeout=60,
    )


def write_private(path: Path, text: str) -> None:
    """Write a file readable by its owner only, all or nothing (a crash leaves the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Credentials:
    homeserver: str
    user_id: str
    device_id: str
    access_token: str


class LoginFailed(InvalidInput):
    """The homeserver refused the bot's login: the configuration must change."""


class HomeserverUnreachable(InvalidInput):
    """The homeserver did not answer when the bot started."""


async def open_session(settings: MatrixSettings) -> AsyncClient:
    """A logged-in client with its crypto store loaded: the saved device if there is one,
    else a new login (by access token or password) whose device is saved for next time."""
    store = _prepare_store(Path(settings.store_path))
    saved = _load_credentials(store)
    if saved is not None and (
        saved.user_id != settings.user_id or saved.homeserver != settings.homeserver
    ):
        log.warning(
            "The store at %s belongs to %s on %s, not to the configured %s on %s: "
            "logging in again as a new device.",
            store,
            saved.user_id,
            saved.homeserver,
            settings.user_id,
            settings.homeserver,
        )
        saved = None
    client = AsyncClient(
        settings.homeserver,
        settings.user_id,
        store_path=str(store),
        config=client_config(),
    )
    try:
        restoring = saved is not None
        if saved is None:
            saved = await _login(client, settings)
            write_private(store / CREDENTIALS, json.dumps(saved.__dict__, indent=2))
            log.info("Logged in as %s, new device %s", saved.user_id, saved.device_id)
        client.restore_login(saved.user_id, saved.device_id, saved.access_token)
        if restoring:
            await _check_saved_login(client, store / CREDENTIALS)
            log.info("Restored device %s of %s", saved.device_id, saved.user_id)
        if client.should_upload_keys:
            await client.keys_upload()
    except (ClientError, TimeoutError) as error:
        # Named here: left alone, a refused connection (an OSError) reached the command
        # line, which reported it as a problem with the database.
        await client.close()
        raise HomeserverUnreachable(
            _(
                "Error in configuration at 'matrix.homeserver': cannot reach the homeserver "
                "at %(url)s (%(reason)s). Check the URL, and that the homeserver is running.",
                url=settings.homeserver,
                reason=str(error) or type(error).__name__,
            )
        ) from error
    except BaseException:
        await client.close()
        raise
    return client


async def _check_saved_login(client: AsyncClient, path: Path) -> None:
    """Ask the homeserver whether the saved login still works: one request at start,
    which finds a homeserver that does not answer, or a device signed out meanwhile (the
    bot would otherwise run on, every sync refused)."""
    who = await client.whoami()
    if isinstance(who, WhoamiResponse):
        return
    if who.status_code == UNKNOWN_TOKEN:
        raise revoked(path, str(who.message))
    raise ClientError(str(who))  # reported as a homeserver that does not answer properly


def revoked(path: Path, reason: str) -> LoginFailed:
    return LoginFailed(
        _(
            "The homeserver no longer accepts the bot's saved login in %(path)s "
            "(%(reason)s): its device was signed out. Move that file away to log in again "
            "as a new device; messages encrypted for the old device stay unreadable to it.",
            path=str(path),
            reason=reason,
        )
    )


async def _login(client: AsyncClient, settings: MatrixSettings) -> Credentials:
    if settings.access_token:
        client.access_token = settings.access_token
        who = await client.whoami()
        if not isinstance(who, WhoamiResponse) or not who.device_id:
            await client.close()
            raise LoginFailed(
                _(
                    "Error in configuration at 'matrix.access_token': the homeserver did not "
                    "accept it (%(reason)s).",
                    reason=getattr(who, "message", None) or _("no reason given"),
                )
            )
        if who.user_id != settings.user_id:
            await client.close()
            raise LoginFailed(
                _(
                    "Error in configuration at 'matrix.access_token': it belongs to %(other)s, "
                    "not to %(user)s.",
                    other=who.user_id,
                    user=settings.user_id,
                )
            )
        return Credentials(settings.homeserver, who.user_id, who.device_id, settings.access_token)
    response = await client.login(settings.password, device_name=settings.device_name)
    if not isinstance(response, LoginResponse):
        await client.close()
        raise LoginFailed(
            _(
                "Error in configuration at 'matrix.password': the homeserver refused the "
                "login of %(user)s (%(reason)s).",
                user=settings.user_id,
                reason=getattr(response, "message", None) or _("no reason given"),
            )
        )
    return Credentials(
        settings.homeserver, response.user_id, response.device_id, response.access_token
    )


def _prepare_store(store: Path) -> Path:
    store.mkdir(parents=True, exist_ok=True)
    os.chmod(store, 0o700)  # keys and the access token: the bot's operator only
    return store


def _load_credentials(store: Path) -> Credentials | None:
    try:
        data = json.loads((store / CREDENTIALS).read_text(encoding="utf-8"))
        return Credentials(**data)
    except FileNotFoundError:
        return None
    except (ValueError, TypeError) as error:
        raise InvalidInput(
            _(
                "The bot's saved login %(path)s is damaged (%(reason)s). Move it away to log "
                "in again as a new device.",
                path=str(store / CREDENTIALS),
                reason=type(error).__name__,
            )
        ) from error


class SyncPosition:
    """Where the bot's reading of its sync stream stopped: saved after a response has been
    handled (never before), so a crash replays at most the last response, and the ledger
    of handled events makes that replay harmless."""

    def __init__(self, store_path: Path) -> None:
        self.path = store_path / SYNC_TOKEN

    def load(self) -> str | None:
        try:
            return self.path.read_text(encoding="utf-8").strip() or None
        except FileNotFoundError:
            return None

    def save(self, token: str) -> None:
        write_private(self.path, token)
