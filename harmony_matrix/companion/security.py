"""What keeps the companion's pages safe: headers and Content-Security-Policy, CSRF
tokens with an ``Origin`` check, rate limits on ballot posts, and an access log that
never holds a ballot link or a client's address.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import deque
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from harmony_matrix.errors import NotAllowed
from harmony_matrix.i18n import _

#: No inline script or style, nothing from another host, no framing, no base tag tricks.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "manifest-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)
HSTS = "max-age=31536000; includeSubDomains"
#: Paths whose second segment is a secret: a ballot link or a secretary's sign-in link.
SECRET_PATHS = re.compile(r"^/(vote|paper)/[^/?#]+")
#: How long a form may stay open before its CSRF token expires.
CSRF_MAX_AGE_SECONDS = 12 * 3600


def redacted_path(path: str) -> str:
    """A path fit for a log: a secret link becomes ``/vote/[link]``."""
    return SECRET_PATHS.sub(lambda match: f"/{match.group(1)}/[link]", path)


@dataclass
class WebSecurity:
    secret_key: bytes
    #: The site's own origin ("https://vote.example.org"), from [web] public_base_url.
    public_origin: str
    serializer: URLSafeTimedSerializer = field(init=False)

    def __post_init__(self) -> None:
        self.serializer = URLSafeTimedSerializer(self.secret_key, salt="harmony-csrf")

    def csrf_token(self, scope: str) -> str:
        """A token for a form that acts within ``scope`` (a ballot link, a session)."""
        return self.serializer.dumps(_scope_digest(scope))

    def check_post(self, request: web.Request, token: str | None, scope: str) -> None:
        """Refuse a POST from another site or without this scope's valid token."""
        origin = request.headers.get("Origin")
        # Under our Referrer-Policy (no-referrer) browsers send "Origin: null" even for
        # the site's own forms; Sec-Fetch-Site and the token decide those.
        if origin not in (None, "null") and origin not in self._own_origins(request):
            raise NotAllowed(_("This form was sent from another website, so it was refused."))
        if request.headers.get("Sec-Fetch-Site") == "cross-site":
            raise NotAllowed(_("This form was sent from another website, so it was refused."))
        try:
            digest = self.serializer.loads(token or "", max_age=CSRF_MAX_AGE_SECONDS)
        except SignatureExpired as error:
            raise NotAllowed(
                _("This page was open too long. Go back, reload the page and try again.")
            ) from error
        except BadSignature as error:
            raise NotAllowed(
                _("This form could not be checked. Go back, reload the page and try again.")
            ) from error
        if digest != _scope_digest(scope):
            raise NotAllowed(
                _("This form could not be checked. Go back, reload the page and try again.")
            )

    def _own_origins(self, request: web.Request) -> set[str]:
        own = {self.public_origin}
        # The address the browser used (a test server on a random port, say).
        own.add(f"{request.scheme}://{request.host}")
        return own


def _scope_digest(scope: str) -> str:
    # The token carries a digest, never the scope: a ballot link must not appear in a page
    # as anything but itself.
    return hashlib.sha256(b"csrf-scope:" + scope.encode()).hexdigest()[:32]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response, error pages and static files included."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if request.secure:
        headers["Strict-Transport-Security"] = HSTS
    if SECRET_PATHS.match(request.path):
        # A ballot page is never kept by a shared computer's browser or a proxy.
        headers["Cache-Control"] = "no-store"


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key, in this process's memory.

    Keys are digests, so memory holds no address or link in clear."""

    def __init__(self, limit: int, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        if self.limit <= 0:
            return True
        now = time.monotonic()
        digest = hashlib.sha256(key.encode()).hexdigest()
        events = self._events.setdefault(digest, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        if len(self._events) > 100_000:  # forget idle keys rather than grow without end
            self._forget_idle(now)
        return True

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]


def client_address(request: web.Request, *, trust_forwarded_for: bool) -> str:
    """Who is asking, for rate limits only: ``X-Forwarded-For`` is believed only when the
    operator says a proxy of theirs sets it (its last entry is the one that proxy saw)."""
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            return hops[-1]
    return request.remote or "unknown"


class AccessLogger(AbstractAccessLogger):
    """Method, path (secret links redacted), status and time; never the client's address,
    the query string, the Referer or the User-Agent."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "%s %s %s %.1fms",
            request.method,
            redacted_path(request.path),
            response.status,
            time * 1000,
        )
