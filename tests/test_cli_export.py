"""`harmony export`, `harmony import` and `harmony db backup`, run as real processes."""

from __future__ import annotations

import json
import sqlite3
import stat

import pytest

from harmony_matrix.services import petitions
from tests.conftest import POSTGRES_URL
from tests.services.helpers import CHLOE, GWEN
from tests.test_cli import harmony


def without_time(text: str) -> dict:
    document = json.loads(text)
    document.pop("exported_at")
    return document


async def test_export_to_a_file_then_import_it_elsewhere(demo, database_url, empty_url, tmp_path):
    view = await petitions.start_petition(demo, CHLOE, "Adopt a new logo")
    await petitions.sign_petition(demo, GWEN, view.ref)
    saved = tmp_path / "record.json"
    exported = harmony("export", str(saved), database=database_url)
    assert exported.returncode == 0, exported.stderr
    assert str(saved) in exported.stdout
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600  # personal data: the owner only

    imported = harmony("import", str(saved), database=empty_url)  # migrates the new database
    assert imported.returncode == 0, imported.stderr
    assert "Imported" in imported.stdout
    again = harmony("export", database=empty_url)  # to stdout
    assert again.returncode == 0, again.stderr
    assert without_time(again.stdout) == without_time(saved.read_text())
    assert len(json.loads(again.stdout)["tables"]["signatures"]) == 2
    verified = harmony("consensus", "--verify", database=empty_url)
    assert verified.returncode == 0, verified.stderr

    twice = harmony("import", str(saved), database=empty_url)
    assert twice.returncode == 2 and "not empty" in twice.stderr
    over = harmony("export", str(saved), database=database_url)
    assert over.returncode == 2 and str(saved) in over.stderr


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", "is not JSON"),
        ('{"format": "other"}', "not a Harmony export"),
        ('{"format": "harmony-export", "version": 9, "tables": {}}', "version 9"),
    ],
)
def test_bad_documents_exit_2(tmp_path, empty_url, content, words):
    document = tmp_path / "bad.json"
    document.write_text(content)
    result = harmony("import", str(document), database=empty_url)
    assert result.returncode == 2 and words in result.stderr
    missing = harmony("import", str(tmp_path / "nothing.json"), database=empty_url)
    assert missing.returncode == 2 and "There is no file" in missing.stderr


@pytest.mark.skipif(bool(POSTGRES_URL), reason="a SQLite file is backed up")
def test_backup_of_sqlite_opens_with_the_same_people(demo, database_url, tmp_path):
    copy = tmp_path / "backup" / "copy.db"
    copy.parent.mkdir()
    result = harmony("db", "backup", str(copy), database=database_url)
    assert result.returncode == 0, result.stderr
    source = database_url.split("///", 1)[1]
    counts = []
    for path in (source, copy):
        with sqlite3.connect(path) as connection:
            counts.append(connection.execute("SELECT count(*) FROM people").fetchone()[0])
        connection.close()
    assert counts[0] == counts[1] > 0
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert [p.name for p in copy.parent.iterdir()] == ["copy.db"]  # nothing left over

    again = harmony("db", "backup", str(copy), database=database_url)
    assert again.returncode == 2 and "already exists" in again.stderr
    nowhere = harmony("db", "backup", str(tmp_path / "no" / "x.db"), database=database_url)
    assert nowhere.returncode == 2 and "Cannot write the backup" in nowhere.stderr


@pytest.mark.skipif(not POSTGRES_URL, reason="PostgreSQL is backed up with pg_dump")
def test_backup_of_postgresql_says_to_use_pg_dump(database_url, tmp_path):
    result = harmony("db", "backup", str(tmp_path / "copy.db"), database=database_url)
    assert result.returncode == 2 and "pg_dump" in result.stderr
