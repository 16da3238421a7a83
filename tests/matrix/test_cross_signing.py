"""The bot cross-signs its own device, through a real Synapse; every check is made from a
member's side (their own keys/query), and every signature is verified here, by hand."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from nio import AsyncClient, AsyncClientConfig, KeysUploadResponse, LoginResponse
from nio.store import SqliteStore

from harmony_matrix.bot.identity import (
    CrossSigningError,
    CrossSigningKeys,
    CrossSigningStatus,
    ensure_cross_signed,
    load_keys,
    save_keys,
)
from harmony_matrix.homeserver import RegisteredUser


async def _bot(
    user: RegisteredUser, store: Path, *, restore: tuple[str, str] | None = None
) -> AsyncClient:
    """The bot as the app runs it: encryption on, logged in (or, on a restart, its
    ``restore`` = (device ID, access token) restored), device keys uploaded."""
    await asyncio.to_thread(store.mkdir, parents=True, exist_ok=True)
    client = AsyncClient(
        user.homeserver,
        user.user_id,
        store_path=str(store),
        config=AsyncClientConfig(encryption_enabled=True, store=SqliteStore),
    )
    if restore is None:
        login = await client.login(user.password, device_name="Harmony")
        assert isinstance(login, LoginResponse), login
    else:
        client.restore_login(user.user_id, *restore)
    if client.should_upload_keys:
        uploaded = await client.keys_upload()
        assert isinstance(uploaded, KeysUploadResponse), uploaded
    return client


async def _query_as(member: RegisteredUser, user_id: str) -> dict[str, Any]:
    """POST /keys/query with the member's own token: what the member's clients see."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{member.homeserver}/_matrix/client/v3/keys/query",
            json={"device_keys": {user_id: []}},
            headers={"Authorization": f"Bearer {member.access_token}"},
        ) as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _signed_by(obj: dict[str, Any], signer: str, public_key: str) -> bool:
    """Spec, Appendices, "Checking for a signature": written out here, independent of
    the module under test."""
    signature = obj.get("signatures", {}).get(signer, {}).get(f"ed25519:{public_key}")
    if signature is None:
        return False
    content = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    message = json.dumps(content, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
    try:
        Ed25519PublicKey.from_public_bytes(_b64(public_key)).verify(
            _b64(signature), message.encode("utf-8")
        )
    except InvalidSignature:
        return False
    return True


def _only_key(key_object: dict[str, Any]) -> str:
    (key_id, public_key), *rest = key_object["keys"].items()
    assert rest == []
    assert key_id == f"ed25519:{public_key}"
    return public_key


def _cross_signed(keys: dict[str, Any], user_id: str, device_id: str) -> tuple[str, str]:
    """Check, as a member's client would, that the device is signed by its owner:
    master -> self-signing -> device. Returns the two public keys."""
    master = keys["master_keys"][user_id]
    self_signing = keys["self_signing_keys"][user_id]
    assert master["user_id"] == user_id and master["usage"] == ["master"]
    assert self_signing["user_id"] == user_id and self_signing["usage"] == ["self_signing"]
    master_public, ssk_public = _only_key(master), _only_key(self_signing)
    assert _signed_by(self_signing, user_id, master_public)
    device = keys["device_keys"][user_id][device_id]
    assert _signed_by(device, user_id, ssk_public)
    return master_public, ssk_public


async def test_a_member_sees_the_bots_device_signed_by_its_master_key(register_user, tmp_path):
    bot_user = await register_user("harmony")
    member = await register_user("member")
    store = tmp_path / "bot-store"
    bot = await _bot(bot_user, store)
    try:
        assert await ensure_cross_signed(bot, store) is CrossSigningStatus.CREATED
        device_id, token = bot.device_id, bot.access_token
    finally:
        await bot.close()

    keys = await _query_as(member, bot_user.user_id)
    master_public, _ssk = _cross_signed(keys, bot_user.user_id, device_id)
    # The identity is the one kept in the store: the bot can use it again after a restart.
    kept = json.loads((store / "cross-signing.json").read_text())
    assert kept["user_id"] == bot_user.user_id
    assert (store / "cross-signing.json").stat().st_mode & 0o777 == 0o600
    # The device's own signature survives next to the cross-signature.
    device = keys["device_keys"][bot_user.user_id][device_id]
    device_key = device["keys"][f"ed25519:{device_id}"]
    assert _signed_by_device(device, bot_user.user_id, device_id, device_key)
    assert master_public != device_key

    # A restart (same store, same device) changes nothing the member can see.
    restarted = await _bot(bot_user, store, restore=(device_id, token))
    try:
        assert restarted.device_id == device_id
        assert await ensure_cross_signed(restarted, store) is CrossSigningStatus.ALREADY_SIGNED
    finally:
        await restarted.close()
    assert await _query_as(member, bot_user.user_id) == keys


def _signed_by_device(obj: dict[str, Any], user_id: str, device_id: str, key: str) -> bool:
    renamed = dict(obj)
    sigs = obj["signatures"][user_id]
    renamed["signatures"] = {user_id: {f"ed25519:{key}": sigs[f"ed25519:{device_id}"]}}
    return _signed_by(renamed, user_id, key)


async def test_a_second_store_does_not_replace_the_identity_on_the_server(register_user, tmp_path):
    bot_user = await register_user("harmony")
    member = await register_user("member")
    first = await _bot(bot_user, tmp_path / "first")
    try:
        assert await ensure_cross_signed(first, tmp_path / "first") is CrossSigningStatus.CREATED
        first_device = first.device_id
    finally:
        await first.close()
    before = await _query_as(member, bot_user.user_id)
    master_public, ssk_public = _cross_signed(before, bot_user.user_id, first_device)

    # Another device of the same account, with a store (and so a key file) of its own.
    second = await _bot(bot_user, tmp_path / "second")
    try:
        status = await ensure_cross_signed(second, tmp_path / "second", bot_user.password)
        second_device = second.device_id
    finally:
        await second.close()
    assert status is CrossSigningStatus.FOREIGN_IDENTITY
    assert not (tmp_path / "second" / "cross-signing.json").exists()

    after = await _query_as(member, bot_user.user_id)
    assert after["master_keys"] == before["master_keys"]
    assert after["self_signing_keys"] == before["self_signing_keys"]
    assert _cross_signed(after, bot_user.user_id, first_device) == (master_public, ssk_public)
    second_keys = after["device_keys"][bot_user.user_id][second_device]
    assert not _signed_by(second_keys, bot_user.user_id, ssk_public)
    assert list(second_keys["signatures"][bot_user.user_id]) == [f"ed25519:{second_device}"]

    # The same account's key file, restored into a third store: that device is signed.
    (tmp_path / "third").mkdir()
    shutil.copy(tmp_path / "first" / "cross-signing.json", tmp_path / "third")
    third = await _bot(bot_user, tmp_path / "third")
    try:
        assert await ensure_cross_signed(third, tmp_path / "third") is (
            CrossSigningStatus.SIGNED_NOW
        )
        third_device = third.device_id
    finally:
        await third.close()
    latest = await _query_as(member, bot_user.user_id)
    assert _cross_signed(latest, bot_user.user_id, third_device) == (master_public, ssk_public)


async def test_synapse_asks_for_the_password_to_change_an_identity_and_gets_it(
    register_user, tmp_path
):
    bot_user = await register_user("harmony")
    member = await register_user("member")
    store = tmp_path / "bot-store"
    bot = await _bot(bot_user, store)
    try:
        assert await ensure_cross_signed(bot, store) is CrossSigningStatus.CREATED
        # Our master key with a new self-signing key: an upload to an identity that
        # exists, which Synapse accepts only after user-interactive auth.
        kept = load_keys(store / "cross-signing.json", bot_user.user_id)
        assert kept is not None
        renewed = CrossSigningKeys(kept.user_id, kept.master, Ed25519PrivateKey.generate())
        save_keys(store / "cross-signing.json", renewed)
        with pytest.raises(CrossSigningError, match=r"\[matrix\] password"):
            await ensure_cross_signed(bot, store)
        status = await ensure_cross_signed(bot, store, bot_user.password)
        device_id = bot.device_id
    finally:
        await bot.close()
    assert status is CrossSigningStatus.SIGNED_NOW
    keys = await _query_as(member, bot_user.user_id)
    assert _cross_signed(keys, bot_user.user_id, device_id) == (
        renewed.master_public,
        renewed.self_signing_public,
    )
