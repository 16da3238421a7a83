"""Signed ballot links bound to one ballot round, expiring when the round closes.

A link carries the round, a random single-use token, an expiry time and an HMAC of the
three under the party's secret key. The database keeps only hashes of the token: the
link itself exists only in the member's direct message.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from harmony_matrix.errors import NotAllowed
from harmony_matrix.i18n import _

TOKEN_BYTES = 32
#: ASCII digits only (str.isdigit accepts "²", which int() refuses).
DIGITS = re.compile(r"[0-9]{1,20}")


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def right_hash(token: str) -> str:
    """Stored on the voting right, to find it from a link."""
    return hashlib.sha256(b"right:" + token.encode()).hexdigest()


def spent_hash(token: str) -> str:
    """Stored when the token is used. Without the token it cannot be matched to the
    right's hash, so the spent record does not reveal whose it is."""
    return hashlib.sha256(b"spent:" + token.encode()).hexdigest()


class ExpiredLink(NotAllowed):
    """An authentic link past its expiry (its round's closing time): the page can say
    which ballot closed, since the signature vouches for ``round_id``."""

    def __init__(self, round_id: int) -> None:
        super().__init__(_("This ballot has closed, so its links no longer work."))
        self.round_id = round_id


@dataclass(frozen=True)
class BallotLink:
    round_id: int
    token: str
    expires: int  # Unix time, seconds

    def _payload(self) -> bytes:
        return f"{self.round_id}.{self.token}.{self.expires}".encode()

    def sign(self, key: bytes) -> str:
        """The link's path segment: ``ROUND.TOKEN.EXPIRES.SIGNATURE`` (URL-safe)."""
        mac = hmac.new(key, self._payload(), hashlib.sha256).digest()
        signature = base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        return f"{self._payload().decode()}.{signature}"

    @classmethod
    def verify(cls, text: str, key: bytes, now: datetime) -> BallotLink:
        """Parse and check a link; refuse anything tampered with or expired."""
        refused = NotAllowed(
            _("This voting link is not valid. Use the link in your latest message from Harmony.")
        )
        parts = text.strip().split(".")
        if len(parts) != 4 or not DIGITS.fullmatch(parts[0]) or not DIGITS.fullmatch(parts[2]):
            raise refused
        link = cls(round_id=int(parts[0]), token=parts[1], expires=int(parts[2]))
        if not hmac.compare_digest(link.sign(key), text.strip()):
            raise refused
        if now.astimezone(UTC).timestamp() >= link.expires:
            raise ExpiredLink(link.round_id)
        return link
