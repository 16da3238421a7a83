"""docker-compose.yml, the Dockerfile and docker/install.sh, checked without a Docker engine:
the compose file against the Compose Specification, the Dockerfile's structure, the files
agreeing with each other, and the image's install steps run for real in a clean venv."""

import json
import os
import re
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from ruamel.yaml import YAML  # check-jsonschema's own YAML reader (a dev dependency)

from harmony_matrix.homeserver import free_port

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
INSTALL = ROOT / "docker" / "install.sh"
HARMONY_TOML = ROOT / "docker" / "harmony.toml"
# Installed with the dev extras next to pytest; a missing one fails the test, never skips.
CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"


def validate(path: Path) -> subprocess.CompletedProcess[str]:
    # The schema is vendored inside check-jsonschema: no network is used.
    return subprocess.run(
        [str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def compose() -> dict:
    return YAML(typ="safe").load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_file_follows_the_compose_specification():
    result = validate(COMPOSE)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("breakage", "complaint"),
    [
        (lambda data: data["services"]["web"].__setitem__("ports", 12), "ports"),
        (lambda data: data.__setitem__("servces", {}), "servces"),
        (lambda data: data["services"]["bot"]["depends_on"]["migrate"].pop("condition"), ""),
    ],
    ids=["ports-not-a-list", "unknown-top-level-key", "depends-on-without-condition"],
)
def test_the_validation_refuses_a_broken_compose_file(tmp_path, breakage, complaint):
    # The same data as JSON (a YAML file too) passes, so only the breakage can fail it.
    data = compose()
    control = tmp_path / "control.json"
    control.write_text(json.dumps(data), encoding="utf-8")
    assert validate(control).returncode == 0
    breakage(data)
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps(data), encoding="utf-8")
    result = validate(broken)
    assert result.returncode != 0
    assert complaint in result.stdout


def test_compose_services_as_deployed():
    services = compose()["services"]
    assert {"postgres", "synapse", "migrate", "bot", "web", "proxy"} <= set(services)
    assert "version" not in compose()  # obsolete in the Compose Specification
    command = ["run", "--config", "/etc/harmony/harmony.toml", "--only"]
    assert services["bot"]["command"] == [*command, "bot"]
    assert services["web"]["command"] == [*command, "web"]
    assert services["migrate"]["command"][:2] == ["db", "upgrade"]
    # `--scale web=3`: a fixed name or host port would stop the second copy.
    assert "container_name" not in services["web"]
    assert "ports" not in services["web"]
    assert services["proxy"]["ports"] == ["8080:8080"]
    for name in ("bot", "web"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
    assert services["bot"]["depends_on"]["synapse"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    for name in ("postgres", "synapse", "web", "bot"):
        assert services[name].get("healthcheck", {}).get("disable") is not True, name
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert any("/health" in part for part in services["synapse"]["healthcheck"]["test"])
    nginx = (ROOT / "docker" / "nginx.conf").read_text(encoding="utf-8")
    assert re.search(r"server web:8080 resolve;", nginx)
    assert "X-Forwarded-For $proxy_add_x_forwarded_for" in nginx
    # A request line holds a ballot link: the proxy logs none (Harmony's log redacts).
    code = "\n".join(line.split("#", 1)[0] for line in nginx.splitlines())
    assert re.search(r"^\s*access_log off;", code, re.MULTILINE)
    assert re.search(r"^\s*error_log \S+ crit;", code, re.MULTILINE)


def nginx_locations() -> dict[str, str]:
    """Each ``location`` of docker/nginx.conf (its modifier and URI) and its body."""
    nginx = (ROOT / "docker" / "nginx.conf").read_text(encoding="utf-8")
    code = "\n".join(line.split("#", 1)[0] for line in nginx.splitlines())
    return {
        " ".join(match[1].split()): match[2]
        for match in re.finditer(r"location\s+([^{]+?)\s*\{([^}]*)\}", code)
    }


def test_the_proxy_never_passes_metrics_to_the_public():
    locations = nginx_locations()
    assert "/" in locations and "proxy_pass" in locations["/"]
    # An exact match: nginx picks it before any prefix or regex location, so "/metrics"
    # (after nginx decodes %XX and resolves dots and slashes) is answered here alone.
    assert "= /metrics" in locations
    denied = locations["= /metrics"].split()
    assert "proxy_pass" not in locations["= /metrics"]
    assert denied[:2] in (["return", "404;"], ["return", "403;"]) or denied == ["deny", "all;"]
    # The web containers serve it (to a monitor inside the Docker network).
    web = compose()["services"]["web"]["environment"]
    assert web["HARMONY_WEB__METRICS"] == "true"


def run_check(script: str) -> int:
    check = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=30)
    return check.returncode


def test_the_bots_health_port_is_its_healthcheck(tmp_path):
    bot = compose()["services"]["bot"]
    port = bot["environment"]["HARMONY_MATRIX__HEALTH_PORT"]
    assert bot["expose"] == [port]
    assert "ports" not in bot  # inside the Docker network only
    test = bot["healthcheck"]["test"]
    assert test[:3] == ["CMD", "python", "-c"]
    assert f"http://127.0.0.1:{port}/healthz" in test[3] and "urllib" in test[3]
    # The check runs as written: it passes when /healthz answers 200 (here a plain file
    # server standing in for the bot), and fails when nothing answers.
    (tmp_path / "healthz").write_text("active\n", encoding="utf-8")
    free = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(free), "--bind", "127.0.0.1"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        script = test[3].replace(f":{port}/", f":{free}/")
        deadline = time.monotonic() + 20
        while (passed := run_check(script)) != 0 and time.monotonic() < deadline:
            time.sleep(0.2)  # the server is starting
        assert passed == 0
    finally:
        server.terminate()
        server.wait(10)
    assert run_check(script) != 0
    # The database settings still come through (the environment is merged, not replaced).
    assert bot["environment"]["HARMONY_DATABASE__URL"].startswith("postgresql://")


def test_compose_file_and_image_agree_with_the_harmony_config():
    settings = tomllib.loads(HARMONY_TOML.read_text(encoding="utf-8"))
    store = settings["matrix"]["store_path"]
    keys = settings["security"]["ballot_keys_path"]
    assert settings["web"]["trust_forwarded_for"] is True
    assert settings["web"]["host"] == "0.0.0.0"
    # The image declares both folders as volumes, and the bot keeps them in named volumes.
    volumes = json.loads(instructions("VOLUME")[0])
    assert {store, keys} <= set(volumes)
    mounted = {entry.split(":")[1] for entry in compose()["services"]["bot"]["volumes"]}
    assert {store, keys} <= mounted
    # Each secret file the config names is one the compose file mounts.
    data = compose()
    for path in (settings["matrix"]["password_file"], settings["security"]["secret_key_file"]):
        name = path.removeprefix("/run/secrets/")
        assert name in data["secrets"], path
        for service in ("migrate", "bot", "web"):
            assert name in data["services"][service]["secrets"], (service, name)


def instructions(keyword: str) -> list[str]:
    """The arguments of each ``keyword`` instruction, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text(encoding="utf-8"))
    return [
        line.split(None, 1)[1].strip()
        for line in text.splitlines()
        if line.strip() and line.split(None, 1)[0].upper() == keyword
    ]


def test_dockerfile_structure():
    stages = instructions("FROM")
    assert len(stages) >= 2, "multi-stage: a build stage and a runtime stage"
    assert stages[-1].startswith("python:3.11-slim")
    users = instructions("USER")
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in ("root", "0")
    assert users[-1].split(":")[0] == "10001"
    (healthcheck,) = instructions("HEALTHCHECK")
    assert "/healthz" in healthcheck and "urllib" in healthcheck
    assert json.loads(instructions("ENTRYPOINT")[0]) == ["harmony"]
    assert json.loads(instructions("CMD")[-1]) == ["run", "--config", "/etc/harmony/harmony.toml"]
    # The image installs through docker/install.sh, the script the slow test below runs.
    copied = [c.split() for c in instructions("COPY") if "docker/install.sh" in c.split()]
    assert copied, "the Dockerfile copies docker/install.sh"
    target = copied[0][-1]
    assert any(target in run for run in instructions("RUN"))
    assert any("pip wheel" in run for run in instructions("RUN"))
    ignored = (ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    for folder in (".git", ".venv", "node_modules", "var", "test-results"):
        assert folder in ignored, folder


@pytest.mark.slow
def test_install_script_makes_a_working_harmony(tmp_path):
    """The image's install steps, for real: the project's wheel and its dependencies from
    the package index into a new venv, then the installed `harmony` runs."""
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(ROOT),
        ],
        check=True,
    )
    (wheel,) = wheels.glob("harmony_matrix-*.whl")
    venv = tmp_path / "venv"
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("HARMONY_", "VIRTUAL_ENV", "PYTHONPATH"))
    }
    # The interpreter behind this test's venv, as python:3.11-slim's python3 in the image.
    env["PYTHON"] = getattr(sys, "_base_executable", sys.executable)
    installed = subprocess.run(
        ["sh", str(INSTALL), str(venv), str(wheel)],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert installed.returncode == 0, installed.stderr
    assert installed.stdout.startswith("harmony ")
    harmony = venv / "bin" / "harmony"
    # No dev extras in the image.
    packages = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {item["name"].lower() for item in json.loads(packages.stdout)}
    assert "harmony-matrix" in names and "matrix-nio" in names
    assert not names & {"pytest", "mypy", "ruff", "playwright", "check-jsonschema"}
    work = tmp_path / "work"
    work.mkdir()
    usage = subprocess.run(
        [str(harmony), "--help"], cwd=work, env=env, capture_output=True, text=True
    )
    assert usage.returncode == 0, usage.stderr
    assert "tally" in usage.stdout
    ballots = work / "ballots.csv"
    ballots.write_text("A,B,C\n5,4,0\n5,4,0\n0,1,5\n0,1,5\n0,1,0\n", encoding="utf-8")
    tally = subprocess.run(
        [str(harmony), "tally", str(ballots)], cwd=work, env=env, capture_output=True, text=True
    )
    assert tally.returncode == 0, tally.stderr
    result = json.loads(tally.stdout)
    assert result["winner"] == "B"
    assert result["totals"] == {"A": 10, "B": 11, "C": 10}
