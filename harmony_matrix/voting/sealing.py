"""Sealed ballots: an open round's receipts and scores, unreadable in storage.

Each round has its own X25519 key pair. Its public key is stored with the round, so any
process that casts ballots (every web worker) can seal one; its private key never enters
the database: it is kept in a file, wrapped under the party's secret key
(``storage/key_store.py``), and destroyed once the round is counted. A ballot is sealed
to the round's public key with a fresh ephemeral key (ECDH), and the AEAD key
(ChaCha20-Poly1305) is derived from that exchange *and* from ``[security] secret_key``.

So the database files alone show no receipt and no score (no running tally, nothing a
published ballot could be matched with), the key alone opens nothing, and after the
close not even the files and the secret key together can open a copy of a sealed ballot
left behind in a write-ahead log, an archive or a backup: its round's key is gone.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

RECEIPT_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud safely
RECEIPT_LENGTH = 14  # "K7Q2-9MXA-PLW4"
KEY_BYTES = 32
NONCE_BYTES = 12


class SealBroken(ValueError):
    """A sealed ballot or a key file that does not open: altered, or the wrong key."""


def new_receipt() -> str:
    """A receipt code such as ``K7Q2-9MXA-PLW4`` (60 bits: unguessable, easy to read)."""
    chars = "".join(secrets.choice(RECEIPT_ALPHABET) for _ in range(12))
    return f"{chars[:4]}-{chars[4:8]}-{chars[8:]}"


@dataclass(frozen=True)
class RoundKeys:
    public: bytes
    private: bytes = b""

    @classmethod
    def generate(cls) -> RoundKeys:
        private = X25519PrivateKey.generate()
        return cls(private.public_key().public_bytes_raw(), private.private_bytes_raw())

    @property
    def fingerprint(self) -> str:
        """Names the round's key file without saying which round it is."""
        return hashlib.sha256(b"round-key:" + self.public).hexdigest()[:32]


def _subkey(secret_key: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret_key, b"harmony " + purpose, hashlib.sha256).digest()


def _ballot_key(
    secret_key: bytes, shared: bytes, ephemeral: bytes, round_public: bytes, round_id: int
) -> tuple[bytes, bytes]:
    info = b"harmony-ballot:%d:" % round_id + ephemeral + round_public
    material = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES + NONCE_BYTES,
        salt=_subkey(secret_key, b"ballot seal v1"),
        info=info,
    ).derive(shared)
    return material[:KEY_BYTES], material[KEY_BYTES:]


def seal(
    round_public: bytes, secret_key: bytes, round_id: int, receipt: str, scores: Sequence[int]
) -> bytes:
    """Seal a receipt and its scores (0-5, in the order of the round's options).

    Every ballot of a round seals to the same length, so sizes say nothing either.
    """
    if len(receipt) != RECEIPT_LENGTH or any(not 0 <= s <= 5 for s in scores):
        raise ValueError("a receipt of 14 characters and scores from 0 to 5")
    ephemeral = X25519PrivateKey.generate()
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(round_public))
    key, nonce = _ballot_key(secret_key, shared, ephemeral_public, round_public, round_id)
    plaintext = receipt.encode("ascii") + bytes(scores)
    return ephemeral_public + ChaCha20Poly1305(key).encrypt(nonce, plaintext, None)


def unseal(
    keys: RoundKeys, secret_key: bytes, round_id: int, sealed: bytes, option_count: int
) -> tuple[str, list[int]]:
    """Open a sealed ballot of this round: its receipt and scores."""
    ephemeral_public, ciphertext = sealed[:KEY_BYTES], sealed[KEY_BYTES:]
    try:
        shared = X25519PrivateKey.from_private_bytes(keys.private).exchange(
            X25519PublicKey.from_public_bytes(ephemeral_public)
        )
        key, nonce = _ballot_key(secret_key, shared, ephemeral_public, keys.public, round_id)
        plaintext = ChaCha20Poly1305(key).decrypt(nonce, ciphertext, None)
    except (InvalidTag, ValueError) as error:
        raise SealBroken("the ballot does not open") from error
    receipt, scores = plaintext[:RECEIPT_LENGTH], list(plaintext[RECEIPT_LENGTH:])
    if len(scores) != option_count or any(s > 5 for s in scores):
        raise SealBroken("the ballot does not fit the round")
    return receipt.decode("ascii"), scores


def wrap_private_key(keys: RoundKeys, secret_key: bytes) -> bytes:
    """The content of a round's key file: its private key, encrypted under the secret
    key and bound to its public key (a file swapped for another round's does not open)."""
    nonce = os.urandom(NONCE_BYTES)
    aead = ChaCha20Poly1305(_subkey(secret_key, b"round key file v1"))
    return nonce + aead.encrypt(nonce, keys.private, keys.public)


def unwrap_private_key(public: bytes, wrapped: bytes, secret_key: bytes) -> RoundKeys:
    nonce, ciphertext = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
    aead = ChaCha20Poly1305(_subkey(secret_key, b"round key file v1"))
    try:
        private = aead.decrypt(nonce, ciphertext, public)
    except InvalidTag as error:
        raise SealBroken("the round's key file does not open with this secret key") from error
    return RoundKeys(public, private)
