"""The committed vendor assets are exactly what scripts/build_assets.mjs makes from
web/assets/ and the pinned Node packages, and hold nothing that is not ours to serve."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser.conftest import ROOT, _missing

VENDOR = ROOT / "web" / "static" / "vendor"
BUILT = ("harmony.css", "govuk-frontend.min.js", "GOVUK-FRONTEND-LICENSE.txt")


@pytest.fixture(scope="module")
def css() -> str:
    return (VENDOR / "harmony.css").read_text(encoding="utf-8")


def test_a_rebuild_reproduces_the_committed_files_byte_for_byte(tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "sass").is_dir():
        _missing("Node with node_modules/sass (npm ci)")
    build = subprocess.run(
        [str(node), "scripts/build_assets.mjs", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert build.returncode == 0, build.stderr

    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(BUILT)
    stale = [
        name for name in BUILT if (tmp_path / name).read_bytes() != (VENDOR / name).read_bytes()
    ]
    assert stale == [], "run `node scripts/build_assets.mjs` and commit web/static/vendor/"


def test_the_css_names_no_gov_uk_typeface_and_no_other_host(css: str) -> None:
    assert "GDS Transport" not in css
    assert "@font-face" not in css
    assert "url(http" not in css
    assert "//fonts." not in css
    # Every url() in the stylesheet would be a file we serve; there are none at all.
    assert re.findall(r"url\(", css) == []


def test_the_css_uses_the_system_font_stack(css: str) -> None:
    assert "font-family:system-ui,-apple-system," in css


def test_the_css_mirrors_gov_uk_frontend_for_right_to_left_pages(css: str) -> None:
    for rule in (
        "[dir=rtl] .govuk-radios__label::before,"
        "[dir=rtl] .govuk-checkboxes__label::before{right:2px;left:auto}",
        "[dir=rtl] .govuk-inset-text{border-right:",
        "[dir=rtl] .govuk-back-link::before{right:",
        "[dir=rtl] .govuk-table__header,[dir=rtl] .govuk-table__cell{",
        "[dir=rtl] .govuk-warning-text__icon{right:0;left:auto}",
        "[dir=rtl] .govuk-service-navigation__item--active{",
    ):
        assert rule in css


def test_the_vendor_folder_holds_govuk_frontends_licence() -> None:
    licence = (VENDOR / "GOVUK-FRONTEND-LICENSE.txt").read_text(encoding="utf-8")
    assert "The MIT License (MIT)" in licence
    assert "Crown Copyright (Government Digital Service)" in licence
