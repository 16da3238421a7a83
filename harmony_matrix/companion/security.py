"""What keeps the companion's pages safe: headers and Content-Security-Policy, CSRF
tokens with an ``Origin`` check, rate limits on ballot posts, and an access log that
never holds a ballot link or a client's address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from harmony_matrix.companion.keys import SETTINGS
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
#: The same anywhere in a text (a request line, a URL, an exception's message).
SECRET_PATHS_IN_TEXT = re.compile(r"/(vote|paper)/[^/?#\s\"'<>]+")
#: A signed ballot link on its own, ``ROUND.TOKEN.EXPIRES.SIGNATURE`` (voting/links.py).
BARE_BALLOT_LINK = re.compile(r"\b[0-9]{1,20}\.[A-Za-z0-9_-]{20,}\.[0-9]{1,20}\.[A-Za-z0-9_-]{20,}")
#: An IPv4 address, or an IPv6 one: every IPv6 address has "::" or seven colons, so a
#: time of day ("10:00:00") is left alone.
IP_ADDRESS = re.compile(
    r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b"
    r"|(?<![\w:.])(?=[0-9A-Fa-f:.]*::|(?:[0-9A-Fa-f]{1,4}:){7})[0-9A-Fa-f:.]{2,45}(?:%\w+)?"
    r"(?![\w:])"
)
#: The loggers of aiohttp's server side: their records may hold a request line or the
#: client's address ("Error handling request from %s", request.remote).
AIOHTTP_SERVER_LOGGERS = (
    "aiohttp.access",
    "aiohttp.server",
    "aiohttp.web",
    "aiohttp.internal",
    "aiohttp.websocket",
)
#: How long a form may stay open before its CSRF token expires.
CSRF_MAX_AGE_SECONDS = 12 * 3600


def redacted_path(path: str) -> str:
    """A path fit for a log: a secret link becomes ``/vote/[link]``."""
    return SECRET_PATHS.sub(lambda match: f"/{match.group(1)}/[link]", path)


def redacted_text(text: str, *, addresses: bool = False) -> str:
    """A text fit for a log: secret paths and bare ballot links (and, if asked, IP
    addresses) replaced wherever they occur."""
    text = SECRET_PATHS_IN_TEXT.sub(lambda match: f"/{match.group(1)}/[link]", text)
    text = BARE_BALLOT_LINK.sub("[link]", text)
    if addresses:
        text = IP_ADDRESS.sub("[address]", text)
    return text


@dataclass
class WebSecurity:
    """CSRF protection for every POST.

    The real protection is the token: signed with the server's key (its own salt, so it
    can never pass for a ballot link), bound to the form's scope by a digest and valid
    for ``CSRF_MAX_AGE_SECONDS``. Browsers add two more checks for free: ``Origin``
    (refused when it names another origin, including ``null``) and ``Sec-Fetch-Site``
    (refused when cross-site or same-site: a sibling subdomain is another party). Both
    headers may be missing (older browsers, privacy tools); then the token alone
    decides.
    """

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
        fetch_site = request.headers.get("Sec-Fetch-Site")
        # Under our Referrer-Policy (no-referrer) browsers send "Origin: null" even for
        # the site's own forms. A browser that sends Sec-Fetch-Site says where the form
        # was (a sandboxed frame or a data: URL also sends null, as cross-site); one that
        # does not (Safari before 16.4) leaves it to the token, which only our own page
        # for this link or session carries.
        if origin == "null":
            if fetch_site not in (None, "same-origin"):
                raise NotAllowed(_("This form was sent from another website, so it was refused."))
        elif origin is not None and origin not in self._own_origins(request):
            raise NotAllowed(_("This form was sent from another website, so it was refused."))
        if fetch_site in ("cross-site", "same-site"):
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
        if not isinstance(digest, str) or not hmac.compare_digest(digest, _scope_digest(scope)):
            raise NotAllowed(
                _("This form could not be checked. Go back, reload the page and try again.")
            )

    def _own_origins(self, request: web.Request) -> set[str]:
        own = {self.public_origin}
        # The address the browser used (a test server on a random port, say). Trusting
        # the Host header here is safe: a browser always sends the name of the site it
        # is talking to, so a page elsewhere cannot make Origin and Host agree on our
        # site; a DNS-rebinding page is its own origin with no token of ours. Behind a
        # TLS proxy aiohttp sees http, but a site whose public URL is https takes no
        # form from a plain-http page (one a network attacker could have written).
        https = request.secure or self.public_origin.startswith("https://")
        own.add(f"{'https' if https else request.scheme}://{request.host}")
        return own


def _scope_digest(scope: str) -> str:
    # The token carries a digest, never the scope: a ballot link must not appear in a page
    # as anything but itself.
    return hashlib.sha256(b"csrf-scope:" + scope.encode()).hexdigest()[:32]


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def served_over_https(request: web.Request) -> bool:
    """Whether the browser reached us over HTTPS.

    Decision: HSTS is sent when the connection to us is TLS (``request.secure``) OR the
    operator's [web] public_base_url starts with ``https://``. Behind a TLS-terminating
    proxy aiohttp sees plain http, yet the browser's connection is HTTPS, and the
    operator's setting says so; the header is ignored by browsers on plain http, so
    sending it there (a misconfigured URL) does no harm. ``X-Forwarded-Proto`` is never
    believed: a client could set it.
    """
    if request.secure:
        return True
    settings = request.config_dict.get(SETTINGS)
    return settings is not None and settings.public_base_url.startswith("https://")


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every response, error pages and static files included."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), interest-cohort=()"
    if served_over_https(request):
        headers["Strict-Transport-Security"] = HSTS
    if SECRET_PATHS.match(request.path):
        # A ballot page is never kept by a shared computer's browser or a proxy.
        headers["Cache-Control"] = "no-store"


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (a sliding window), in
    this process's memory; ``limit`` 0 means no limit.

    Keys are digests, so memory holds no address or link in clear."""

    #: Past this many keys, idle ones are forgotten rather than kept without end.
    MAX_KEYS = 100_000

    def __init__(
        self, limit: int, window: float = 60.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._events: dict[str, deque[float]] = {}

    def allow(self, key: str) -> bool:
        if self.limit <= 0:
            return True
        now = self.clock()
        digest = hashlib.sha256(key.encode()).hexdigest()
        events = self._events.setdefault(digest, deque())
        while events and events[0] <= now - self.window:
            events.popleft()
        if len(events) >= self.limit:
            return False
        events.append(now)
        if len(self._events) > 2 * self.MAX_KEYS:
            # Now and then, not on every request: a scan costs as much as the keys held.
            self._forget_idle(now)
        return True

    def _forget_idle(self, now: float) -> None:
        for key in [k for k, v in self._events.items() if not v or v[-1] <= now - self.window]:
            del self._events[key]


def client_address(request: web.BaseRequest, *, trust_forwarded_for: bool) -> str:
    """Who is asking, for rate limits only: ``X-Forwarded-For`` is believed only when the
    operator says a proxy of theirs sets it (its last entry is the one that proxy saw;
    the earlier ones are whatever the client wrote)."""
    address = request.remote or "unknown"
    if trust_forwarded_for:
        forwarded = request.headers.get("X-Forwarded-For", "")
        hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
        if hops:
            address = hops[-1]
    return as_one_client(address)


def as_one_client(address: str) -> str:
    """An IPv6 client is its /64: one home or phone is given a whole /64 and can pick a
    new address in it for every request."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


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


class RedactingFilter(logging.Filter):
    """Rewrites a log record so it holds no secret path, no bare ballot link and (for
    aiohttp's own records) no client address: in its message, its arguments and its
    traceback. It never drops a record.

    Why: aiohttp logs "Error handling request from %s" with ``request.remote`` and a
    traceback, and a parser error's message can quote the request line
    (``GET /vote/<link> ...``); a handler's exception may carry a link in its text.
    """

    def __init__(self, *, addresses: bool = False) -> None:
        super().__init__()
        self.addresses = addresses

    def filter(self, record: logging.LogRecord) -> bool:
        addresses = self.addresses or record.name.startswith("aiohttp.")
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what can be kept, redacted
            message = f"{record.msg!s} {record.args!r}"
        record.msg = redacted_text(message, addresses=addresses)
        record.args = None
        if record.exc_info and not record.exc_text:
            # Formatted now, once, so that every handler prints the redacted text.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        record.exc_info = None
        if record.exc_text:
            record.exc_text = redacted_text(record.exc_text, addresses=addresses)
        if record.stack_info:
            record.stack_info = redacted_text(record.stack_info, addresses=addresses)
        return True


def install_log_redaction(*, root_handlers: bool = True) -> RedactingFilter:
    """Make every log record safe to keep. Idempotent.

    The filter goes on aiohttp's server-side loggers (a logger's filter sees the records
    made on that logger, whatever handlers exist later, pytest's caplog included) and,
    unless told not to, on every handler of the root logger (a handler's filter sees the
    records of every logger that reaches it: harmony_matrix's, SQLAlchemy's). Call it
    after the handlers are configured (``harmony web`` does, after
    ``logging.basicConfig``). Tests pass ``root_handlers=False`` to see Harmony's own
    records unredacted, so that a leak in Harmony's code is not hidden."""
    existing = next(
        (f for f in logging.getLogger("aiohttp.server").filters if isinstance(f, RedactingFilter)),
        None,
    )
    redacting = existing or RedactingFilter()
    for name in AIOHTTP_SERVER_LOGGERS:
        logger = logging.getLogger(name)
        if redacting not in logger.filters:
            logger.addFilter(redacting)
    for handler in logging.getLogger().handlers if root_handlers else ():
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(redacting)
    return redacting
