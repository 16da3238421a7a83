"""The companion's security: headers on every response, HSTS only over HTTPS, CSRF
tokens and the Origin check, the rate limiter, the client's address, and logs that
hold no ballot link and no client address (the access log and aiohttp's own errors)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import ssl
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from unittest import mock

import pytest
from aiohttp import ClientSession, web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import URLSafeTimedSerializer
from itsdangerous.timed import TimestampSigner

from harmony_matrix.companion.app import make_app
from harmony_matrix.companion.keys import SECURITY
from harmony_matrix.companion.security import (
    CSRF_MAX_AGE_SECONDS,
    AccessLogger,
    RateLimiter,
    RedactingFilter,
    WebSecurity,
    as_one_client,
    client_address,
    install_log_redaction,
    redacted_text,
)
from harmony_matrix.config import WebSettings
from harmony_matrix.errors import NotAllowed
from harmony_matrix.resources import data_dir
from harmony_matrix.services.context import ServiceContext

SECRET = "1.SECRETTOKENsecrettokenSECRETTOKEN.1790000000.SIGNATUREsignatureSIGNATURE"
KEY = b"test-secret-key-not-for-production"
ORIGIN = "https://vote.example.org"


# --- Headers on every response -------------------------------------------------------


def _test_app(ctx: ServiceContext, static: Path, settings: WebSettings | None = None):
    """The companion plus a few routes that fail in different ways, and a static folder
    of the test's own (so the check does not wait for the assets)."""

    async def boom(_request: web.Request) -> web.Response:
        raise ZeroDivisionError("an internal error")

    async def no_response(_request: web.Request) -> web.Response:
        return None  # type: ignore[return-value]  # aiohttp answers 500 itself

    (static / "probe.css").write_text("body { color: black; }\n")
    app = make_app(ctx, settings)
    app.router.add_get("/test/boom", boom)
    app.router.add_get("/test/none", no_response)
    app.router.add_static("/static-test/", static)
    return app


def _real_static_file() -> str | None:
    folder = data_dir("web") / "static"
    found = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    return f"/static/{found[0].relative_to(folder).as_posix()}" if found else None


#: (what, method, path, expected status or None for "whatever it is now")
RESPONSES = [
    ("the home page (whatever it is now)", "GET", "/", None),
    ("a 404 page", "GET", "/no-such-page", 404),
    ("a ballot page for a bad link", "GET", f"/vote/{SECRET}", None),
    ("a static file", "GET", "/static-test/probe.css", 200),
    ("a missing static file", "GET", "/static/no-such-file.css", 404),
    ("the health check", "GET", "/healthz", 200),
    ("a 405", "POST", "/healthz", 405),
    ("a 500 from a route", "GET", "/test/boom", 500),
    ("a 500 made by aiohttp itself", "GET", "/test/none", 500),
]


@pytest.fixture
async def test_client(ctx, tmp_path) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(_test_app(ctx, tmp_path))) as client:
        yield client


def assert_strict_headers(headers) -> None:
    csp = headers["Content-Security-Policy"]
    directives = {d.strip().split()[0]: d.strip().split()[1:] for d in csp.split(";")}
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert directives["default-src"] == ["'none'"]
    assert directives["script-src"] == ["'self'"]
    assert directives["style-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert directives["form-action"] == ["'self'"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert headers["X-Frame-Options"] == "DENY"


@pytest.mark.parametrize(("what", "method", "path", "status"), RESPONSES, ids=lambda v: v)
async def test_every_response_has_the_strict_headers(test_client, what, method, path, status):
    response = await test_client.request(method, path)
    if status is not None:
        assert response.status == status, what
    assert_strict_headers(response.headers)
    # Plain http and an http public_base_url: no HSTS (it would be ignored anyway).
    assert "Strict-Transport-Security" not in response.headers


async def test_a_real_static_asset_has_the_strict_headers(client):
    path = _real_static_file()
    assert path is not None, "web/static has no asset"
    response = await client.get(path)
    assert response.status == 200
    assert_strict_headers(response.headers)


@pytest.mark.parametrize(
    "path", [f"/vote/{SECRET}", f"/vote/{SECRET}/ballot", "/vote/x/cast", f"/paper/{SECRET}"]
)
async def test_secret_pages_are_never_stored_by_a_browser_or_proxy(test_client, path):
    response = await test_client.get(path)
    assert response.headers["Cache-Control"] == "no-store"


async def test_a_public_page_may_be_cached(test_client):
    response = await test_client.get("/healthz")
    assert "no-store" not in response.headers.get("Cache-Control", "")


# --- HSTS only over HTTPS ------------------------------------------------------------


async def test_hsts_behind_a_tls_proxy_when_the_public_url_is_https(ctx, tmp_path):
    settings = WebSettings(public_base_url="https://vote.example.org")
    async with TestClient(TestServer(_test_app(ctx, tmp_path, settings))) as client:
        for what, method, path, _status in RESPONSES:
            response = await client.request(method, path)
            assert "max-age=" in response.headers["Strict-Transport-Security"], what
            assert_strict_headers(response.headers)


def _self_signed(folder: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


async def test_hsts_when_served_over_tls_itself(ctx, tmp_path):
    # An http public_base_url, but the connection is TLS: request.secure decides.
    server = TestServer(_test_app(ctx, tmp_path))
    await server.start_server(ssl=_self_signed(tmp_path))
    async with TestClient(server) as client:
        assert str(client.make_url("/")).startswith("https://")
        for what, method, path, _status in RESPONSES:
            response = await client.request(method, path, ssl=False)
            assert "max-age=" in response.headers["Strict-Transport-Security"], what


async def test_no_hsts_over_plain_http_even_with_a_forged_forwarded_proto(test_client):
    response = await test_client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in response.headers


# --- CSRF ----------------------------------------------------------------------------

security = WebSecurity(KEY, ORIGIN)


def post(headers: dict[str, str] | None = None, *, host: str = "vote.example.org"):
    return make_mocked_request("POST", "/vote/x/cast", headers={"Host": host, **(headers or {})})


def refused(token: str | None, scope: str, headers: dict[str, str] | None = None) -> str:
    with pytest.raises(NotAllowed) as error:
        security.check_post(post(headers), token, scope)
    return error.value.message.render("en")


@given(scope=st.text(min_size=1))
@settings(max_examples=50)
def test_a_valid_token_is_accepted_and_does_not_carry_its_scope(scope):
    token = security.csrf_token(scope)
    security.check_post(post(), token, scope)  # no Origin: the token decides
    security.check_post(post({"Origin": ORIGIN, "Sec-Fetch-Site": "same-origin"}), token, scope)
    if len(scope) > 3:
        assert scope not in token
        assert scope not in str(URLSafeTimedSerializer(KEY, salt="harmony-csrf").loads(token))


def test_the_origin_the_browser_used_is_our_own():
    # A test server on a random port: the Host header names it, Origin matches it.
    local = WebSecurity(KEY, "http://127.0.0.1:8080")
    request = post({"Origin": "http://127.0.0.1:41234"}, host="127.0.0.1:41234")
    local.check_post(request, local.csrf_token("s"), "s")
    # A site whose public URL is https takes no form from a plain-http page of its name.
    with pytest.raises(NotAllowed):
        security.check_post(request, security.csrf_token("s"), "s")


@given(scope=st.text(min_size=1), other=st.text(min_size=1))
def test_a_token_for_another_scope_is_refused(scope, other):
    if scope != other:
        assert "could not be checked" in refused(security.csrf_token(scope), other)


@given(garbage=st.text() | st.none())
def test_garbage_is_refused(garbage):
    assert "could not be checked" in refused(garbage, "scope")


def test_a_token_signed_with_another_key_or_for_another_purpose_is_refused():
    other_key = WebSecurity(b"another-key-entirely-0123456789", ORIGIN).csrf_token("s")
    assert "could not be checked" in refused(other_key, "s")
    # The same key with another salt (a ballot link, say) is no CSRF token.
    foreign = URLSafeTimedSerializer(KEY, salt="something-else").dumps("whatever")
    assert "could not be checked" in refused(foreign, "s")
    assert "could not be checked" in refused(security.csrf_token("s")[:-2] + "xx", "s")


def _signed_at(timestamp: int, scope: str) -> str:
    with mock.patch.object(TimestampSigner, "get_timestamp", return_value=timestamp):
        return security.csrf_token(scope)


def test_an_expired_token_is_refused_and_one_just_in_time_accepted():
    import time

    now = int(time.time())
    expired = _signed_at(now - CSRF_MAX_AGE_SECONDS - 5, "s")
    assert "open too long" in refused(expired, "s")
    fresh_enough = _signed_at(now - CSRF_MAX_AGE_SECONDS + 60, "s")
    security.check_post(post(), fresh_enough, "s")


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Origin": "null", "Sec-Fetch-Site": "cross-site"},  # a sandboxed frame, data: URL
        {"Origin": "http://vote.example.org"},  # our name, but not our scheme
        {"Origin": "https://vote.example.org.evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is another party
        {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_a_post_from_another_site_is_refused_even_with_a_valid_token(headers):
    assert "another website" in refused(security.csrf_token("s"), "s", headers)


@pytest.mark.parametrize(
    "headers",
    [
        # What Chromium sends for the site's own form under Referrer-Policy: no-referrer.
        {"Origin": "null", "Sec-Fetch-Site": "same-origin"},
        # A browser without Sec-Fetch-Site (Safari before 16.4): the token decides.
        {"Origin": "null"},
    ],
)
def test_our_own_form_under_no_referrer_sends_origin_null_and_is_accepted(headers):
    security.check_post(post(headers), security.csrf_token("s"), "s")
    assert "could not be checked" in refused(security.csrf_token("other"), "s", headers)


async def test_over_http_a_refused_post_is_a_403_page_and_reaches_no_handler(ctx):
    reached = []

    async def form(request: web.Request) -> web.Response:
        data = await request.post()
        token = data.get("csrf_token")
        request.app[SECURITY].check_post(request, token if isinstance(token, str) else None, "f")
        reached.append(True)
        return web.Response(text="done")

    app = make_app(ctx)
    app.router.add_post("/test/form", form)
    async with TestClient(TestServer(app)) as client:
        token = app[SECURITY].csrf_token("f")
        ok = await client.post("/test/form", data={"csrf_token": token})
        assert ok.status == 200 and reached == [True]
        same_origin = str(client.make_url("/")).rstrip("/")
        ok = await client.post(
            "/test/form", data={"csrf_token": token}, headers={"Origin": same_origin}
        )
        assert ok.status == 200 and reached == [True, True]
        for data, headers in [
            ({"csrf_token": token}, {"Origin": "https://evil.example"}),
            ({}, {}),
            ({"csrf_token": "nonsense"}, {}),
            ({"csrf_token": app[SECURITY].csrf_token("another form")}, {}),
        ]:
            response = await client.post("/test/form", data=data, headers=headers)
            assert response.status == 403
            assert_strict_headers(response.headers)
        assert reached == [True, True]


# --- Rate limiter --------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@given(
    limit=st.integers(min_value=1, max_value=5),
    window=st.sampled_from([1.0, 10.0, 60.0]),
    steps=st.lists(
        st.tuples(st.sampled_from(["a", "b"]), st.floats(min_value=0, max_value=30)),
        max_size=60,
    ),
)
def test_the_limiter_allows_limit_events_per_sliding_window_per_key(limit, window, steps):
    clock = FakeClock()
    limiter = RateLimiter(limit, window, clock=clock)
    allowed: dict[str, list[float]] = {"a": [], "b": []}
    for key, wait in steps:
        clock.now += wait
        recent = [t for t in allowed[key] if t > clock.now - window]
        expected = len(recent) < limit
        assert limiter.allow(key) is expected
        if expected:
            allowed[key].append(clock.now)


@given(events=st.integers(min_value=0, max_value=500))
def test_a_limit_of_zero_is_no_limit(events):
    limiter = RateLimiter(0, 60.0, clock=FakeClock())
    assert all(limiter.allow("same address") for _ in range(events))


def test_the_window_reopens_and_the_limiter_keeps_no_address_in_clear():
    clock = FakeClock()
    limiter = RateLimiter(2, 60.0, clock=clock)
    assert limiter.allow("203.0.113.9") and limiter.allow("203.0.113.9")
    assert not limiter.allow("203.0.113.9")
    assert limiter.allow("198.51.100.1")  # another address has its own budget
    clock.now += 59.9
    assert not limiter.allow("203.0.113.9")
    clock.now += 0.1
    assert limiter.allow("203.0.113.9")
    assert "203.0.113.9" not in repr(limiter.__dict__)


def test_idle_keys_are_forgotten_past_the_bound(monkeypatch):
    monkeypatch.setattr(RateLimiter, "MAX_KEYS", 10)
    clock = FakeClock()
    limiter = RateLimiter(1, 60.0, clock=clock)
    for n in range(2 * RateLimiter.MAX_KEYS):  # pruned past twice the bound
        limiter.allow(f"old {n}")
    clock.now += 61
    limiter.allow("new 1")
    limiter.allow("new 2")
    assert len(limiter._events) <= 2


# --- The client's address ------------------------------------------------------------


def _from(peer: str, headers: dict[str, str] | None = None):
    transport = mock.Mock()
    transport.get_extra_info.side_effect = lambda name, default=None: (
        (peer, 50000) if name == "peername" else default
    )
    return make_mocked_request("POST", "/vote/x/cast", headers=headers, transport=transport)


hop = st.ip_addresses().map(str)


@given(peer=hop, forwarded=st.lists(hop, max_size=4))
def test_x_forwarded_for_is_ignored_unless_trusted(peer, forwarded):
    headers = {"X-Forwarded-For": ", ".join(forwarded)} if forwarded else {}
    request = _from(peer, headers)
    assert client_address(request, trust_forwarded_for=False) == as_one_client(peer)
    expected = forwarded[-1] if forwarded else peer
    assert client_address(request, trust_forwarded_for=True) == as_one_client(expected)


def test_a_spoofed_first_hop_does_not_win_when_trusted():
    request = _from("10.0.0.2", {"X-Forwarded-For": "1.2.3.4, 203.0.113.7"})
    assert client_address(request, trust_forwarded_for=True) == "203.0.113.7"
    assert client_address(_from("10.0.0.2", {"X-Forwarded-For": " , "}), trust_forwarded_for=True)


# --- Logs ----------------------------------------------------------------------------


async def _serve(app: web.Application, use: Callable[[int], Awaitable[None]]) -> None:
    """Serve ``app`` as ``harmony web`` does (AppRunner, TCPSite, our AccessLogger)."""
    runner = web.AppRunner(app, access_log_class=AccessLogger)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        await use(port)
    finally:
        await runner.cleanup()


async def test_the_access_log_holds_no_link_no_address_and_no_query(ctx, caplog):
    async def requests(port: int) -> None:
        async with ClientSession() as session:
            for path in (f"/vote/{SECRET}?lang=fr", f"/vote/{SECRET}/ballot", "/healthz?x=1"):
                async with session.get(
                    f"http://127.0.0.1:{port}{path}",
                    headers={"Referer": "https://chat.example/SECRETREF", "User-Agent": "UA-X"},
                ) as response:
                    await response.read()

    with caplog.at_level(logging.DEBUG, logger="aiohttp.access"):
        await _serve(make_app(ctx), requests)
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 3, lines
    assert lines[0].startswith("GET /vote/[link] ")
    assert lines[1].startswith("GET /vote/[link]/ballot ")
    assert lines[2].startswith("GET /healthz 200 ")
    logged = caplog.text
    for secret in ("SECRETTOKEN", SECRET, "127.0.0.1", "lang=fr", "x=1", "SECRETREF", "UA-X"):
        assert secret not in logged


def test_the_redaction_filter_cleans_an_error_handling_request_record():
    try:
        raise ValueError(f"Bad status line: b'GET /vote/{SECRET}\\x01 HTTP/1.1'")
    except ValueError:
        exc_info = sys.exc_info()
    record = logging.LogRecord(
        "aiohttp.server",
        logging.ERROR,
        __file__,
        1,
        "Error handling request from %s",
        ("203.0.113.9",),
        exc_info,
    )
    assert RedactingFilter().filter(record) is True  # cleaned, never dropped
    text = logging.Formatter("%(name)s %(message)s").format(record)
    assert "Error handling request from [address]" in text
    assert "ValueError: Bad status line" in text and "/vote/[link]" in text
    assert "SECRETTOKEN" not in text and "203.0.113.9" not in text
    assert record.exc_info is None  # no handler can format the raw exception again


@pytest.mark.parametrize(
    ("text", "clean"),
    [
        (f"GET /vote/{SECRET}/cast HTTP/1.1", "GET /vote/[link]/cast HTTP/1.1"),
        (
            f"see https://vote.example.org/paper/{SECRET}?a=1",
            "see https://vote.example.org/paper/[link]?a=1",
        ),
        (f"link {SECRET} used", "link [link] used"),
        (
            "from ::1 and ::ffff:10.0.0.1 and 2001:db8::7",
            "from [address] and [address] and [address]",
        ),
        ("at 10:00:00 from 192.0.2.1", "at 10:00:00 from [address]"),
    ],
)
def test_redacted_text(text, clean):
    assert redacted_text(text, addresses=True) == clean


@given(st.text())
def test_redacting_is_idempotent(text):
    once = redacted_text(text, addresses=True)
    assert redacted_text(once, addresses=True) == once


async def test_aiohttp_errors_for_malformed_requests_leak_no_link_or_address(ctx, caplog):
    """aiohttp logs a malformed request with the client's address and, in its
    traceback, the request line; with the filter that ``harmony web`` installs, neither
    reaches a log."""
    install_log_redaction(root_handlers=False)
    malformed = [
        f"GET /vote/{SECRET}\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET /vote/{SECRET} HTTP/9.1\r\nHost: x\r\n\r\n",
        f"G\x01T /vote/{SECRET} HTTP/1.1\r\nHost: x\r\n\r\n",
        f"GET http://[bad/vote/{SECRET} HTTP/1.1\r\nHost: x\r\n\r\n",
    ]

    async def send(port: int) -> None:
        for raw in malformed:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(raw.encode("latin-1"))
            await writer.drain()
            assert (await reader.read(12)).startswith(b"HTTP/1.")
            writer.close()
            await writer.wait_closed()

    with caplog.at_level(logging.DEBUG):
        await _serve(make_app(ctx), send)
    errors = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(errors) >= len(malformed) - 1  # one may be logged at DEBUG only
    assert "Error handling request from [address]" in caplog.text
    assert "SECRETTOKEN" not in caplog.text
    assert "127.0.0.1" not in caplog.text


def test_the_filter_is_installed_once_on_aiohttps_loggers_and_the_root_handlers():
    root = logging.getLogger()
    handler = logging.StreamHandler()
    root.addHandler(handler)
    # pytest's own handlers are on the root logger too: they must not keep the filter,
    # which would take the traceback off the records later tests read with caplog.
    kept = {each: list(each.filters) for each in root.handlers}
    try:
        first = install_log_redaction()
        second = install_log_redaction()
        assert first is second
        assert handler.filters.count(first) == 1
        for name in ("aiohttp.server", "aiohttp.web", "aiohttp.access"):
            assert logging.getLogger(name).filters.count(first) == 1
    finally:
        for each, filters in kept.items():
            each.filters[:] = filters
        root.removeHandler(handler)


@pytest.mark.parametrize(
    ("remote", "expected"),
    [
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff:ffff:ffff:ffff", "2001:db8:1:2::/64"),
        ("::ffff:192.0.2.7", "192.0.2.7"),
        ("192.0.2.7", "192.0.2.7"),
    ],
)
def test_an_ipv6_client_is_limited_by_its_64(remote, expected):
    assert client_address(_from(remote), trust_forwarded_for=False) == expected
