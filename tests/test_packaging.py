"""web/, locales/ and alembic/ work from an installed wheel, not only from a checkout."""

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from harmony_matrix.i18n import _

ROOT = Path(__file__).resolve().parent.parent
PROBE = """
import harmony_matrix, harmony_matrix.resources as r, harmony_matrix.i18n as i
print(harmony_matrix.__file__)
print(r.data_dir("locales"))
print(r.data_dir("alembic"))
print(i._("There is no assembly called “%(slug)s”.", slug="x").render("fr"))
from harmony_matrix.companion.rendering import Renderer
renderer = Renderer(party_name="P", timezone="Europe/London")
print(renderer.templates)
page = renderer.environment("fr").get_template("error.html").render(
    title=i._("Page not found"), lang="fr", dir="ltr", languages=[], party_name="P",
    request_path="/", status=404, message=None, error_id=None,
)
print(" ".join(page.split()).split("<h1 ")[1].split("</h1>")[0])
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
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
            str(out),
            str(ROOT),
        ],
        check=True,
    )
    return next(out.glob("harmony_matrix-*.whl"))


def test_wheel_carries_the_data_folders(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for expected in (
        "harmony_matrix/_data/locales/messages.pot",
        "harmony_matrix/_data/locales/fr/LC_MESSAGES/messages.po",
        "harmony_matrix/_data/alembic/env.py",
        "harmony_matrix/_data/alembic/versions/0001_initial_schema.py",
        "harmony_matrix/_data/web/README.md",
        "harmony_matrix/_data/web/templates/base.html",
        "harmony_matrix/_data/web/static/vendor/harmony.css",
        "harmony_matrix/demo/members.csv",
        "harmony_matrix/demo/assemblies.toml",
    ):
        assert expected in names, expected
    generated = [n for n in names if n.endswith((".pyc", ".mo", ".db"))]
    assert not generated, generated


def test_installed_wheel_migrates_translates_and_runs(wheel, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "LANG": "C.UTF-8"}
    env.pop("HARMONY_DATABASE__URL", None)
    probe = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    module, locales, alembic, french, templates, heading = probe.stdout.splitlines()
    for path in (module, locales, alembic, templates):
        assert path.startswith(str(target)), path
    assert french == "Il n'y a pas d'assemblée nommée « x »."
    # The companion's templates and their GOV.UK macros render from the wheel, in French.
    assert heading == f'class="govuk-heading-l">{_("Page not found").render("fr")}', heading
    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "harmony_matrix.cli",
            "--database",
            f"sqlite:///{tmp_path}/d.db",
            "demo",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert demo.returncode == 0, demo.stderr
    assert "HPUK-ASSE-2025-09-4" in demo.stdout
