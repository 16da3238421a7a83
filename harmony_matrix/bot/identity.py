"""The bot's device trust: it cross-signs its own device, so that clients show the device
as "verified by its owner" (MSC4153; Element is moving to refuse room keys to devices
that are not). matrix-nio 0.26.0 has no cross-signing, so this module does it by hand:

- a master key and a self-signing key (Ed25519), made once and kept next to the crypto
  store in ``cross-signing.json`` (mode 0600, written atomically);
- uploaded with ``POST /keys/device_signing/upload`` (the self-signing key signed by the
  master key), then the device's keys, as the server holds them, signed by the
  self-signing key and uploaded with ``POST /keys/signatures/upload``.

No user-signing key: it only serves to sign *other* users' master keys, i.e. for the bot
to verify members, which it never does (it encrypts to every member device regardless).
"Verified by its owner" needs only master -> self-signing -> device. A key with no use
would only be one more secret on disk; one can be added later (that upload needs the
password, since an identity then exists).

An identity the homeserver already holds is never replaced: if its master key is not
ours, the bot leaves it alone and says what the operator can do.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from harmony_matrix.bot.session import write_private

if TYPE_CHECKING:
    import nio

logger = logging.getLogger(__name__)

KEY_FILE_NAME = "cross-signing.json"
KEY_FILE_VERSION = 1

KEYS_QUERY = "/_matrix/client/v3/keys/query"
DEVICE_SIGNING_UPLOAD = "/_matrix/client/v3/keys/device_signing/upload"
SIGNATURES_UPLOAD = "/_matrix/client/v3/keys/signatures/upload"

#: Tries of one request answered 429 before giving up.
_RATE_LIMIT_TRIES = 5
#: Never wait longer than this for one 429, whatever the server asks.
_RATE_LIMIT_MAX_WAIT = 30.0


class CrossSigningStatus(enum.Enum):
    """What ``ensure_cross_signed`` found and did."""

    #: No identity on the server: ours was uploaded and the device signed.
    CREATED = "created"
    #: Our identity was on the server but this device was not signed by it; now it is.
    SIGNED_NOW = "signed_now"
    #: Nothing to do: our identity is on the server and this device carries its signature.
    ALREADY_SIGNED = "already_signed"
    #: The server holds an identity whose private keys we do not have: left untouched,
    #: the device stays unverified, and a warning tells the operator what to do.
    FOREIGN_IDENTITY = "foreign_identity"


class CrossSigningError(Exception):
    """Cross-signing could not be done; the message is for the operator's log."""


# --- Canonical JSON and signatures (spec: Appendices, "Signing JSON") ----------------


def canonical_json(value: Any) -> bytes:
    """The shortest UTF-8 JSON encoding with keys sorted: the bytes that get signed."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True).encode(
        "utf-8"
    )


def encode_base64(data: bytes) -> str:
    """Unpadded standard Base64, as Matrix writes keys and signatures."""
    return base64.b64encode(data).decode("ascii").rstrip("=")


def decode_base64(text: str) -> bytes:
    """Standard Base64 with or without padding (the spec asks readers to accept both)."""
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _signable(obj: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in ("signatures", "unsigned")}


def sign_json(
    obj: dict[str, Any], key: Ed25519PrivateKey, signer: str, key_id: str
) -> dict[str, Any]:
    """A copy of ``obj`` with ``signatures[signer][key_id]`` added; the signature covers
    the object without its ``signatures`` and ``unsigned`` members."""
    signature = encode_base64(key.sign(canonical_json(_signable(obj))))
    signed = dict(obj)
    signatures = {name: dict(sigs) for name, sigs in obj.get("signatures", {}).items()}
    signatures.setdefault(signer, {})[key_id] = signature
    signed["signatures"] = signatures
    return signed


def has_valid_signature(obj: dict[str, Any], public_key: str, signer: str, key_id: str) -> bool:
    """Whether ``obj`` carries, under ``signer``/``key_id``, a valid signature by the
    Ed25519 key whose unpadded Base64 is ``public_key``."""
    try:
        signature = decode_base64(obj["signatures"][signer][key_id])
        verifier = Ed25519PublicKey.from_public_bytes(decode_base64(public_key))
        verifier.verify(signature, canonical_json(_signable(obj)))
    except (KeyError, TypeError, ValueError, binascii.Error, InvalidSignature):
        return False
    return True


def public_key_of(key: Ed25519PrivateKey) -> str:
    return encode_base64(key.public_key().public_bytes_raw())


# --- The keys and their file ---------------------------------------------------------


@dataclass(frozen=True)
class CrossSigningKeys:
    """The private half of the bot's cross-signing identity."""

    user_id: str
    master: Ed25519PrivateKey
    self_signing: Ed25519PrivateKey

    @classmethod
    def generate(cls, user_id: str) -> CrossSigningKeys:
        return cls(user_id, Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate())

    @property
    def master_public(self) -> str:
        return public_key_of(self.master)

    @property
    def self_signing_public(self) -> str:
        return public_key_of(self.self_signing)

    @property
    def master_key_id(self) -> str:
        return f"ed25519:{self.master_public}"

    @property
    def self_signing_key_id(self) -> str:
        return f"ed25519:{self.self_signing_public}"

    def master_key(self) -> dict[str, Any]:
        """The master key object for device_signing/upload."""
        return {
            "user_id": self.user_id,
            "usage": ["master"],
            "keys": {self.master_key_id: self.master_public},
        }

    def self_signing_key(self) -> dict[str, Any]:
        """The self-signing key object, signed by the master key."""
        unsigned = {
            "user_id": self.user_id,
            "usage": ["self_signing"],
            "keys": {self.self_signing_key_id: self.self_signing_public},
        }
        return sign_json(unsigned, self.master, self.user_id, self.master_key_id)


def key_file(store_dir: Path) -> Path:
    return Path(store_dir) / KEY_FILE_NAME


def load_keys(path: Path, user_id: str) -> CrossSigningKeys | None:
    """The keys kept in ``path``, or None if there is no such file yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    if path.stat().st_mode & 0o077:
        # Someone loosened it (a copy, a restore): private keys are for the bot alone.
        logger.warning("%s was readable by others; its mode is now 0600", path)
        path.chmod(0o600)
    try:
        data = json.loads(text)
        if data.get("version") != KEY_FILE_VERSION:
            raise ValueError(f"unknown version {data.get('version')!r}")
        keys = CrossSigningKeys(
            user_id=str(data["user_id"]),
            master=Ed25519PrivateKey.from_private_bytes(decode_base64(data["master_key"])),
            self_signing=Ed25519PrivateKey.from_private_bytes(
                decode_base64(data["self_signing_key"])
            ),
        )
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as error:
        raise CrossSigningError(
            f"{path} is not a cross-signing key file Harmony can read ({error}); "
            "move it away only if the homeserver holds no identity made from it"
        ) from error
    if keys.user_id != user_id:
        raise CrossSigningError(
            f"{path} holds the cross-signing keys of {keys.user_id}, not of {user_id}: "
            "each bot account needs its own store path"
        )
    return keys


def save_keys(path: Path, keys: CrossSigningKeys) -> None:
    """Write the keys to ``path``, readable by the owner only, all or nothing: a crash
    leaves either no file or a whole one, never half a key."""
    data = {
        "version": KEY_FILE_VERSION,
        "user_id": keys.user_id,
        "master_key": encode_base64(keys.master.private_bytes_raw()),
        "self_signing_key": encode_base64(keys.self_signing.private_bytes_raw()),
    }
    write_private(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


# --- Talking to the homeserver -------------------------------------------------------


class MatrixHttp(Protocol):
    """An authenticated POST to the client-server API: (HTTP status, JSON body)."""

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]: ...


class NioHttp:
    """MatrixHttp through a logged-in nio client's own aiohttp session."""

    def __init__(self, client: nio.AsyncClient) -> None:
        self._client = client

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        headers = {
            "Authorization": f"Bearer {self._client.access_token}",
            "Content-Type": "application/json",
        }
        for _attempt in range(_RATE_LIMIT_TRIES):
            response = await self._client.send("POST", path, json.dumps(body), headers)
            try:
                reply = await response.json(content_type=None)
            except ValueError:
                reply = None
            finally:
                response.release()
            if not isinstance(reply, dict):
                reply = {}
            if response.status != 429:
                return response.status, reply
            wait = min(float(reply.get("retry_after_ms", 1000)) / 1000, _RATE_LIMIT_MAX_WAIT)
            logger.info("%s rate-limited; retrying in %.1f s", path, wait)
            await asyncio.sleep(wait)
        return response.status, reply


def _describe(status: int, reply: dict[str, Any]) -> str:
    return f"HTTP {status} {reply.get('errcode', '')} {reply.get('error', '')}".strip()


async def _query_own_keys(http: MatrixHttp, user_id: str) -> dict[str, Any]:
    status, reply = await http.post(KEYS_QUERY, {"device_keys": {user_id: []}})
    if status != 200:
        raise CrossSigningError(f"keys/query for {user_id} failed: {_describe(status, reply)}")
    return reply


def _server_key(reply: dict[str, Any], kind: str, user_id: str) -> str | None:
    """The Ed25519 public key of the user's ``kind`` (master_keys, self_signing_keys)."""
    key_object = reply.get(kind, {}).get(user_id)
    if not key_object:
        return None
    keys = list(key_object.get("keys", {}).values())
    return keys[0] if len(keys) == 1 else None


async def _upload_identity(
    http: MatrixHttp, keys: CrossSigningKeys, password: str | None, *, with_master: bool = True
) -> None:
    body: dict[str, Any] = {"self_signing_key": keys.self_signing_key()}
    if with_master:
        body["master_key"] = keys.master_key()
    status, reply = await http.post(DEVICE_SIGNING_UPLOAD, body)
    if status == 401 and "flows" in reply:
        # User-interactive auth: Synapse asks for it when an identity exists already,
        # and some servers always do. Only a password stage can be answered unattended.
        if password is None:
            raise CrossSigningError(
                f"the homeserver asks for the password of {keys.user_id} before it accepts "
                "the bot's cross-signing keys; set [matrix] password (or lift the "
                "requirement on the server) and restart"
            )
        if not any(flow.get("stages") == ["m.login.password"] for flow in reply["flows"]):
            stages = [flow.get("stages") for flow in reply["flows"]]
            raise CrossSigningError(
                f"the homeserver asks for authentication the bot cannot give ({stages}) "
                f"before it accepts the cross-signing keys of {keys.user_id}"
            )
        body["auth"] = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": keys.user_id},
            "password": password,
        }
        if "session" in reply:
            body["auth"]["session"] = reply["session"]
        status, reply = await http.post(DEVICE_SIGNING_UPLOAD, body)
    if status != 200:
        raise CrossSigningError(
            f"the homeserver refused the cross-signing keys of {keys.user_id}: "
            f"{_describe(status, reply)}"
        )


async def _sign_device(http: MatrixHttp, keys: CrossSigningKeys, device: dict[str, Any]) -> None:
    # Exactly the object the server holds, less signatures and unsigned: the server
    # checks the signature against its own copy.
    signed = sign_json(_signable(device), keys.self_signing, keys.user_id, keys.self_signing_key_id)
    device_id = device["device_id"]
    status, reply = await http.post(SIGNATURES_UPLOAD, {keys.user_id: {device_id: signed}})
    failures = reply.get("failures") if status == 200 else None
    if status != 200 or failures:
        detail = json.dumps(failures) if failures else _describe(status, reply)
        raise CrossSigningError(
            f"the homeserver refused the signature of device {device_id}: {detail}"
        )


# --- The use case --------------------------------------------------------------------


async def ensure_cross_signed(
    client: nio.AsyncClient, store_dir: Path, password: str | None = None
) -> CrossSigningStatus:
    """Make the bot's device cross-signed by the bot's own identity; safe to call on
    every start, right after login and ``keys_upload`` (the device keys must be on the
    server). ``store_dir`` is the crypto store's folder; ``password`` answers the
    homeserver's re-authentication if it asks for it."""
    if client.olm is None:
        raise CrossSigningError("cross-signing needs end-to-end encryption (no olm account)")
    return await cross_sign_device(
        NioHttp(client),
        user_id=client.user_id,
        device_id=client.device_id,
        device_ed25519=client.olm.account.identity_keys["ed25519"],
        store_dir=Path(store_dir),
        password=password,
    )


async def cross_sign_device(
    http: MatrixHttp,
    *,
    user_id: str,
    device_id: str,
    device_ed25519: str,
    store_dir: Path,
    password: str | None = None,
) -> CrossSigningStatus:
    """``ensure_cross_signed`` over any ``MatrixHttp``."""
    reply = await _query_own_keys(http, user_id)
    device = reply.get("device_keys", {}).get(user_id, {}).get(device_id)
    if device is None:
        raise CrossSigningError(
            f"device {device_id} of {user_id} has no keys on the homeserver yet; "
            "upload them (keys_upload) before cross-signing"
        )
    if device.get("keys", {}).get(f"ed25519:{device_id}") != device_ed25519:
        # Signing would vouch for a key that is not this bot's: never.
        raise CrossSigningError(
            f"the homeserver's keys for device {device_id} are not this bot's own keys; "
            "not signing them"
        )

    path = key_file(store_dir)
    keys = await asyncio.to_thread(load_keys, path, user_id)
    server_master = _server_key(reply, "master_keys", user_id)
    created = False
    # Any master key object counts as an identity, even one we cannot read.
    if not reply.get("master_keys", {}).get(user_id):
        if keys is None:
            keys = CrossSigningKeys.generate(user_id)
            # Saved before the upload: once the server holds the public keys, losing the
            # private ones would leave an identity nobody can use.
            await asyncio.to_thread(save_keys, path, keys)
        await _upload_identity(http, keys, password)
        logger.info(
            "Uploaded the cross-signing identity of %s (master key %s)", user_id, keys.master_public
        )
        created = True
    elif keys is None or keys.master_public != server_master:
        logger.warning(
            "The homeserver already holds a cross-signing identity for %s (master key %s) "
            "whose private keys are not in %s. Harmony will not replace it, so device %s "
            "stays unverified and clients that require cross-signed devices (MSC4153) "
            "may not share room keys with it. To fix: log in as %s in a client that holds "
            "that identity (e.g. Element with the recovery key) and verify device %s, or "
            "restore the %s that made it into the store path.",
            user_id,
            server_master,
            path,
            device_id,
            user_id,
            device_id,
            KEY_FILE_NAME,
        )
        return CrossSigningStatus.FOREIGN_IDENTITY
    elif _server_key(reply, "self_signing_keys", user_id) != keys.self_signing_public:
        # Our master key, but not our self-signing key on the server (an upload cut
        # short, or a self-signing key replaced with our master): put ours back. Not the
        # master key again: Synapse 1.163 answers 500 to a master key it already holds.
        await _upload_identity(http, keys, password, with_master=False)

    if has_valid_signature(device, keys.self_signing_public, user_id, keys.self_signing_key_id):
        return CrossSigningStatus.ALREADY_SIGNED
    await _sign_device(http, keys, device)
    logger.info("Device %s of %s is now signed by its self-signing key", device_id, user_id)
    return CrossSigningStatus.CREATED if created else CrossSigningStatus.SIGNED_NOW
