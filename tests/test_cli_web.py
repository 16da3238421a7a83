"""`harmony web`: a real process serving the companion until SIGTERM, with an access log
that names no client and no ballot link; a bad [web] setting is named, exit 2."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from harmony_matrix.homeserver import free_port
from tests.matrix.bot_process import environment, harmony_command


def web_config(path, database_url: str, port: int, **web: object) -> str:
    settings = {"host": "127.0.0.1", "port": port, **web}
    lines = ["[database]", f"url = {json.dumps(database_url)}", "", "[web]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    lines += ["", "[security]", 'secret_key = "cli-web-test-secret-key-0123456789"']
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def wait_for(url: str, process: subprocess.Popen, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered")


def test_it_serves_until_sigterm_and_logs_no_link_or_address(tmp_path, database_url):
    port = free_port()
    config = web_config(tmp_path / "harmony.toml", database_url, port)
    process = subprocess.Popen(
        harmony_command("web", "--config", config),
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert wait_for(f"http://127.0.0.1:{port}/healthz", process) == 200
        assert wait_for(f"http://127.0.0.1:{port}/readyz", process) == 200
        assert wait_for(f"http://127.0.0.1:{port}/vote/1.SECRETTOKEN.9.SIG", process) >= 400
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "stopped" in out
    assert "GET /healthz 200" in err  # the access log is on...
    assert "SECRETTOKEN" not in out + err  # ...and never holds a link
    assert "/vote/[link]" in err
    assert "127.0.0.1 " not in err.replace(f"127.0.0.1 port {port}", "")
    assert "Traceback" not in err


def test_a_port_in_use_is_named(tmp_path, database_url):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = web_config(tmp_path / "harmony.toml", database_url, port)
        result = subprocess.run(
            harmony_command("web", "--config", config),
            env=environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2, result.stderr
    assert f"port {port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_web_setting_is_named(tmp_path, database_url):
    config = web_config(
        tmp_path / "harmony.toml", database_url, free_port(), public_base_url="vote.example.org"
    )
    result = subprocess.run(
        harmony_command("web", "--config", config),
        env=environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "'web.public_base_url'" in result.stderr
