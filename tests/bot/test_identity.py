"""Cross-signing of the bot's own device, without a homeserver: canonical JSON and
signatures against the spec's vectors, the key file, and the decisions (create, sign,
leave a foreign identity alone) against a fake that checks signatures as Synapse does.
The same flow through a real Synapse: tests/matrix/test_cross_signing.py."""

from __future__ import annotations

import json
import logging
import os
import stat
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from harmony_matrix.bot import identity, session
from harmony_matrix.bot.identity import (
    CrossSigningError,
    CrossSigningKeys,
    CrossSigningStatus,
    canonical_json,
    cross_sign_device,
    decode_base64,
    encode_base64,
    has_valid_signature,
    load_keys,
    save_keys,
    sign_json,
)

USER = "@harmony:example.org"
DEVICE = "BOTDEVICE"
PASSWORD = "correct horse battery staple"

# Spec, Appendices, "Cryptographic test vectors".
SPEC_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"
SIGNED_EMPTY = (
    "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ"
)
SIGNED_ONE_TWO = (
    "KqmLSbO39/Bzb0QIYE82zqLwsA+PDzYIpIRA2sRQ4sL53+sN6/fpNSoqE7BP7vBZhG6kYdD13EIMJpvhJI+6Bw"
)


# --- canonical JSON, Base64, signatures ----------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({}, "{}"),
        ({"one": 1, "two": "Two"}, '{"one":1,"two":"Two"}'),
        ({"b": "2", "a": "1"}, '{"a":"1","b":"2"}'),
        (
            {
                "auth": {
                    "success": True,
                    "mxid": "@john.doe:example.com",
                    "profile": {
                        "display_name": "John Doe",
                        "three_pids": [
                            {"medium": "email", "address": "john.doe@example.org"},
                            {"medium": "msisdn", "address": "123456789"},
                        ],
                    },
                }
            },
            '{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe",'
            '"three_pids":[{"address":"john.doe@example.org","medium":"email"},'
            '{"address":"123456789","medium":"msisdn"}]},"success":true}}',
        ),
        ({"a": "日本語"}, '{"a":"日本語"}'),
        ({"本": 2, "日": 1}, '{"日":1,"本":2}'),
        ({"a": "\u65e5"}, '{"a":"日"}'),
        ({"a": None}, '{"a":null}'),
    ],
)
def test_canonical_json_matches_the_spec_examples(value, expected):
    assert canonical_json(value) == expected.encode("utf-8")


@pytest.mark.parametrize(
    ("raw", "encoded"),
    [(b"", ""), (b"f", "Zg"), (b"fo", "Zm8"), (b"foo", "Zm9v"), (b"foobar", "Zm9vYmFy")],
)
def test_base64_is_unpadded_and_reads_both_forms(raw, encoded):
    assert encode_base64(raw) == encoded
    assert decode_base64(encoded) == raw
    assert decode_base64(encoded + "=" * (-len(encoded) % 4)) == raw


@pytest.mark.parametrize(
    ("obj", "signature"),
    [
        (
            {},
            "K8280/U9SSy9IVtjBuVeLr+HpOB4BQFWbg+UZaADMtTdGYI7Geitb76LTrr5QV/7Xg4ahLwYGYZzuHGZKM5ZAQ",
        ),
        (
            {"one": 1, "two": "Two"},
            SIGNED_ONE_TWO,
        ),
    ],
)
def test_signing_gives_the_spec_signatures(obj, signature):
    key = Ed25519PrivateKey.from_private_bytes(decode_base64(SPEC_SEED))
    signed = sign_json(obj, key, "domain", "ed25519:1")
    assert signed == {**obj, "signatures": {"domain": {"ed25519:1": signature}}}
    assert obj.get("signatures") is None  # the original is left as it was


def test_a_signature_ignores_signatures_and_unsigned_and_keeps_them():
    key = Ed25519PrivateKey.from_private_bytes(decode_base64(SPEC_SEED))
    obj = {
        "one": 1,
        "two": "Two",
        "unsigned": {"age_ts": 922834800000},
        "signatures": {"other": {"ed25519:x": "abc"}},
    }
    signed = sign_json(obj, key, "domain", "ed25519:1")
    assert signed["signatures"] == {
        "other": {"ed25519:x": "abc"},
        "domain": {"ed25519:1": SIGNED_ONE_TWO},
    }
    assert signed["unsigned"] == {"age_ts": 922834800000}


def test_a_signature_verifies_with_its_public_key_only():
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    public = identity.public_key_of(key)
    signed = sign_json({"user_id": USER, "keys": {"a": "b"}}, key, USER, "ed25519:k")
    assert has_valid_signature(signed, public, USER, "ed25519:k")
    assert not has_valid_signature(signed, identity.public_key_of(other), USER, "ed25519:k")
    assert not has_valid_signature({**signed, "keys": {"a": "c"}}, public, USER, "ed25519:k")
    assert not has_valid_signature(signed, public, "@else:example.org", "ed25519:k")
    assert not has_valid_signature(signed, public, USER, "ed25519:other")
    assert has_valid_signature({**signed, "unsigned": {"x": 1}}, public, USER, "ed25519:k")


def test_the_self_signing_key_is_signed_by_the_master_key():
    keys = CrossSigningKeys.generate(USER)
    master = keys.master_key()
    assert master == {
        "user_id": USER,
        "usage": ["master"],
        "keys": {f"ed25519:{keys.master_public}": keys.master_public},
    }
    ssk = keys.self_signing_key()
    assert ssk["usage"] == ["self_signing"]
    assert ssk["keys"] == {f"ed25519:{keys.self_signing_public}": keys.self_signing_public}
    assert has_valid_signature(ssk, keys.master_public, USER, keys.master_key_id)
    assert len(decode_base64(keys.master_public)) == 32


# --- the key file --------------------------------------------------------------------


def test_the_key_file_is_private_and_round_trips(tmp_path):
    path = tmp_path / "store" / "cross-signing.json"
    keys = CrossSigningKeys.generate(USER)
    save_keys(path, keys)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["cross-signing.json"]  # no temp left
    loaded = load_keys(path, USER)
    assert loaded is not None
    assert loaded.master_public == keys.master_public
    assert loaded.self_signing_public == keys.self_signing_public
    # The private halves came back too: they sign what the public halves verify.
    signed = sign_json({"a": 1}, loaded.self_signing, USER, "k")
    assert has_valid_signature(signed, keys.self_signing_public, USER, "k")


def test_no_key_file_means_no_keys(tmp_path):
    assert load_keys(tmp_path / "cross-signing.json", USER) is None


def test_a_key_file_readable_by_others_is_made_private(tmp_path, caplog):
    path = tmp_path / "cross-signing.json"
    save_keys(path, CrossSigningKeys.generate(USER))
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING):
        assert load_keys(path, USER) is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "0600" in caplog.text


def test_a_key_file_of_another_account_is_refused(tmp_path):
    path = tmp_path / "cross-signing.json"
    save_keys(path, CrossSigningKeys.generate("@other:example.org"))
    with pytest.raises(CrossSigningError, match=r"@other:example\.org"):
        load_keys(path, USER)


@pytest.mark.parametrize("content", ["not json", "{}", '{"version": 1, "user_id": "@a:b"}'])
def test_a_damaged_key_file_is_refused_not_replaced(tmp_path, content):
    path = tmp_path / "cross-signing.json"
    path.write_text(content)
    with pytest.raises(CrossSigningError, match="Harmony can read"):
        load_keys(path, USER)
    assert path.read_text() == content


def test_a_failed_write_leaves_no_file(tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(session.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_keys(tmp_path / "cross-signing.json", CrossSigningKeys.generate(USER))
    assert list(tmp_path.iterdir()) == []


# --- the decisions, against a fake homeserver ----------------------------------------


class FakeHomeserver:
    """The three endpoints, checking what Synapse checks: the self-signing key signed by
    the master key, a device signature made over the server's own copy of the device."""

    def __init__(self, *, always_uia: bool = False) -> None:
        self.device_key = Ed25519PrivateKey.generate()
        self.device_public = identity.public_key_of(self.device_key)
        device = {
            "user_id": USER,
            "device_id": DEVICE,
            "algorithms": ["m.olm.v1.curve25519-aes-sha2", "m.megolm.v1.aes-sha2"],
            "keys": {
                f"curve25519:{DEVICE}": "c" * 43,
                f"ed25519:{DEVICE}": self.device_public,
            },
        }
        self.device = sign_json(device, self.device_key, USER, f"ed25519:{DEVICE}")
        self.master: dict[str, Any] | None = None
        self.self_signing: dict[str, Any] | None = None
        self.always_uia = always_uia
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def uploads(self) -> list[str]:
        return [path for path, _ in self.requests if path != identity.KEYS_QUERY]

    async def post(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        self.requests.append((path, json.loads(json.dumps(body))))
        if path == identity.KEYS_QUERY:
            return 200, self._query()
        if path == identity.DEVICE_SIGNING_UPLOAD:
            return self._device_signing(body)
        if path == identity.SIGNATURES_UPLOAD:
            return self._signatures(body)
        return 404, {"errcode": "M_UNRECOGNIZED"}

    def _query(self) -> dict[str, Any]:
        device = {**self.device, "unsigned": {"device_display_name": "Harmony"}}
        reply: dict[str, Any] = {"device_keys": {USER: {DEVICE: device}}, "failures": {}}
        if self.master:
            reply["master_keys"] = {USER: self.master}
        if self.self_signing:
            reply["self_signing_keys"] = {USER: self.self_signing}
        return reply

    def _device_signing(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if self.master is not None or self.always_uia:
            auth = body.get("auth")
            if auth is None:
                return 401, {"flows": [{"stages": ["m.login.password"]}], "session": "S1"}
            if auth.get("password") != PASSWORD or auth.get("session") != "S1":
                return 401, {"errcode": "M_FORBIDDEN", "error": "Invalid password"}
        if self.master is not None and body.get("master_key") == self.master:
            # Synapse 1.163 stores a master key as a device too: the same one twice is
            # a unique-constraint error.
            return 500, {"errcode": "M_UNKNOWN", "error": "Internal server error"}
        master = body.get("master_key", self.master)
        assert master is not None
        master_public = next(iter(master["keys"].values()))
        ssk = body["self_signing_key"]
        if not has_valid_signature(ssk, master_public, USER, f"ed25519:{master_public}"):
            return 400, {"errcode": "M_INVALID_SIGNATURE", "error": "Invalid signature"}
        self.master, self.self_signing = master, ssk
        return 200, {}

    def _signatures(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        signed = body[USER][DEVICE]
        assert self.self_signing is not None
        ssk_public = next(iter(self.self_signing["keys"].values()))
        key_id = f"ed25519:{ssk_public}"
        same_object = {k: v for k, v in signed.items() if k != "signatures"} == {
            k: v for k, v in self.device.items() if k != "signatures"
        }
        if not same_object or not has_valid_signature(signed, ssk_public, USER, key_id):
            failure = {"errcode": "M_INVALID_SIGNATURE", "error": "Invalid signature"}
            return 200, {"failures": {USER: {DEVICE: failure}}}
        self.device["signatures"][USER][key_id] = signed["signatures"][USER][key_id]
        return 200, {"failures": {}}

    def device_is_cross_signed(self) -> bool:
        assert self.master is not None and self.self_signing is not None
        master_public = next(iter(self.master["keys"].values()))
        ssk_public = next(iter(self.self_signing["keys"].values()))
        return has_valid_signature(
            self.self_signing, master_public, USER, f"ed25519:{master_public}"
        ) and has_valid_signature(self.device, ssk_public, USER, f"ed25519:{ssk_public}")


async def _run(server: FakeHomeserver, store, password: str | None = None):
    return await cross_sign_device(
        server,
        user_id=USER,
        device_id=DEVICE,
        device_ed25519=server.device_public,
        store_dir=store,
        password=password,
    )


async def test_a_fresh_bot_creates_its_identity_and_signs_its_device(tmp_path):
    server = FakeHomeserver()
    assert await _run(server, tmp_path) is CrossSigningStatus.CREATED
    assert server.device_is_cross_signed()
    keys = load_keys(tmp_path / "cross-signing.json", USER)
    assert keys is not None
    assert server.master == keys.master_key()
    assert server.uploads() == [identity.DEVICE_SIGNING_UPLOAD, identity.SIGNATURES_UPLOAD]
    # The device keeps its own signature: the server's object, one signature more.
    assert f"ed25519:{DEVICE}" in server.device["signatures"][USER]
    # No user-signing key: the bot verifies no one.
    assert "user_signing_key" not in server.requests[1][1]


async def test_calling_again_changes_nothing(tmp_path):
    server = FakeHomeserver()
    await _run(server, tmp_path)
    before = (tmp_path / "cross-signing.json").read_text()
    server.requests.clear()
    assert await _run(server, tmp_path) is CrossSigningStatus.ALREADY_SIGNED
    assert server.uploads() == []
    assert (tmp_path / "cross-signing.json").read_text() == before


async def test_a_new_device_of_our_identity_is_signed_without_a_new_identity(tmp_path):
    first = FakeHomeserver()
    await _run(first, tmp_path)
    # Same account and key file, a new device whose keys are not signed yet.
    second = FakeHomeserver()
    second.master, second.self_signing = first.master, first.self_signing
    assert await _run(second, tmp_path) is CrossSigningStatus.SIGNED_NOW
    assert second.uploads() == [identity.SIGNATURES_UPLOAD]
    assert second.device_is_cross_signed()


async def test_a_foreign_identity_is_left_alone(tmp_path, caplog):
    server = FakeHomeserver()
    stranger = CrossSigningKeys.generate(USER)
    server.master, server.self_signing = stranger.master_key(), stranger.self_signing_key()
    with caplog.at_level(logging.WARNING):
        status = await _run(server, tmp_path, password=PASSWORD)
    assert status is CrossSigningStatus.FOREIGN_IDENTITY
    assert server.uploads() == []
    assert server.master == stranger.master_key()
    assert not (tmp_path / "cross-signing.json").exists()
    assert stranger.master_public in caplog.text
    assert "will not replace" in caplog.text
    assert PASSWORD not in caplog.text


async def test_a_master_key_we_cannot_read_is_an_identity_too(tmp_path):
    server = FakeHomeserver()
    stranger = CrossSigningKeys.generate(USER)
    server.master = {**stranger.master_key(), "keys": {}}
    assert await _run(server, tmp_path, PASSWORD) is CrossSigningStatus.FOREIGN_IDENTITY
    assert server.uploads() == []


async def test_a_foreign_identity_is_left_alone_even_with_keys_of_our_own(tmp_path):
    ours = CrossSigningKeys.generate(USER)
    save_keys(tmp_path / "cross-signing.json", ours)
    before = (tmp_path / "cross-signing.json").read_text()
    server = FakeHomeserver()
    stranger = CrossSigningKeys.generate(USER)
    server.master, server.self_signing = stranger.master_key(), stranger.self_signing_key()
    assert await _run(server, tmp_path, PASSWORD) is CrossSigningStatus.FOREIGN_IDENTITY
    assert server.uploads() == []
    assert (tmp_path / "cross-signing.json").read_text() == before


async def test_re_authentication_without_a_password_is_a_clear_error(tmp_path):
    server = FakeHomeserver(always_uia=True)
    with pytest.raises(CrossSigningError, match=r"password.*\[matrix\] password"):
        await _run(server, tmp_path)
    assert server.master is None
    # The keys are kept: the next start (with a password) uploads the same identity.
    kept = load_keys(tmp_path / "cross-signing.json", USER)
    assert kept is not None
    assert await _run(server, tmp_path, PASSWORD) is CrossSigningStatus.CREATED
    assert server.master == kept.master_key()
    auth = server.requests[-2][1]["auth"]
    assert auth == {
        "type": "m.login.password",
        "identifier": {"type": "m.id.user", "user": USER},
        "password": PASSWORD,
        "session": "S1",
    }


async def test_a_wrong_password_is_reported_without_the_password(tmp_path):
    server = FakeHomeserver(always_uia=True)
    with pytest.raises(CrossSigningError, match="refused") as caught:
        await _run(server, tmp_path, "wrong password")
    assert "wrong password" not in str(caught.value)
    assert server.master is None


async def test_a_device_without_keys_on_the_server_is_an_error(tmp_path):
    server = FakeHomeserver()
    with pytest.raises(CrossSigningError, match="keys_upload"):
        await cross_sign_device(
            server,
            user_id=USER,
            device_id="OTHERDEVICE",
            device_ed25519=server.device_public,
            store_dir=tmp_path,
        )
    assert server.uploads() == []


async def test_keys_that_are_not_the_bots_own_are_never_signed(tmp_path):
    server = FakeHomeserver()
    impostor = identity.public_key_of(Ed25519PrivateKey.generate())
    with pytest.raises(CrossSigningError, match="not this bot's own keys"):
        await cross_sign_device(
            server, user_id=USER, device_id=DEVICE, device_ed25519=impostor, store_dir=tmp_path
        )
    assert server.uploads() == []


async def test_a_refused_device_signature_is_an_error(tmp_path, monkeypatch):
    server = FakeHomeserver()
    real_sign = identity.sign_json

    def sign_something_else(obj, key, signer, key_id):
        return real_sign(
            {**obj, "device_id": "X"} if "device_id" in obj else obj, key, signer, key_id
        )

    monkeypatch.setattr(identity, "sign_json", sign_something_else)
    with pytest.raises(CrossSigningError, match="M_INVALID_SIGNATURE"):
        await _run(server, tmp_path)


async def test_our_master_with_a_missing_self_signing_key_gets_ours_back(tmp_path):
    server = FakeHomeserver()
    await _run(server, tmp_path)
    server.self_signing = None  # e.g. an upload that was cut short
    status = await _run(server, tmp_path, PASSWORD)
    assert status is CrossSigningStatus.ALREADY_SIGNED
    keys = load_keys(tmp_path / "cross-signing.json", USER)
    assert keys is not None
    assert server.self_signing == keys.self_signing_key()
    assert server.device_is_cross_signed()


# --- the nio side --------------------------------------------------------------------


class FakeResponse:
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        self.status = status
        self._body = body

    async def json(self, content_type: str | None = None) -> dict[str, Any]:
        return self._body

    def release(self) -> None:
        pass


class FakeClient:
    access_token = "secret-token"

    def __init__(self, responses: list[FakeResponse]) -> None:
        self.responses = responses
        self.sent: list[tuple[str, str, Any, dict[str, str]]] = []

    async def send(self, method, path, data=None, headers=None):
        self.sent.append((method, path, json.loads(data), headers))
        return self.responses.pop(0)


async def test_nio_http_authenticates_and_waits_out_rate_limits(monkeypatch):
    slept: list[float] = []

    async def no_sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(identity.asyncio, "sleep", no_sleep)
    client = FakeClient(
        [
            FakeResponse(429, {"errcode": "M_LIMIT_EXCEEDED", "retry_after_ms": 250}),
            FakeResponse(200, {"ok": True}),
        ]
    )
    status, reply = await identity.NioHttp(client).post("/p", {"a": 1})  # type: ignore[arg-type]
    assert (status, reply) == (200, {"ok": True})
    assert slept == [0.25]
    method, path, data, headers = client.sent[0]
    assert (method, path, data) == ("POST", "/p", {"a": 1})
    assert headers["Authorization"] == "Bearer secret-token"


async def test_ensure_cross_signed_needs_encryption(tmp_path):
    class NoOlm:
        olm = None

    with pytest.raises(CrossSigningError, match="encryption"):
        await identity.ensure_cross_signed(NoOlm(), tmp_path)  # type: ignore[arg-type]


def test_the_key_file_name_is_the_documented_one(tmp_path):
    assert identity.key_file(tmp_path) == tmp_path / "cross-signing.json"
    assert os.sep not in identity.KEY_FILE_NAME
