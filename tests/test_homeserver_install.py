"""Installing Synapse: once per venv, where the environment says, failures explained.
(The real install runs in ./dev test and tests/matrix; these run without a network.)"""

import subprocess
import sys

import pytest

from harmony_matrix.homeserver.install import (
    SYNAPSE_VERSION,
    SynapseInstallError,
    ensure_synapse,
    synapse_venv,
)


def test_the_venv_is_in_the_cache_unless_the_environment_names_one(monkeypatch, tmp_path):
    monkeypatch.delenv("HARMONY_SYNAPSE_VENV", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert synapse_venv() == tmp_path / ".cache" / "harmony" / f"synapse-{SYNAPSE_VERSION}"
    monkeypatch.setenv("HARMONY_SYNAPSE_VENV", str(tmp_path / "elsewhere"))
    assert synapse_venv() == tmp_path / "elsewhere"


def test_an_installed_venv_is_not_installed_again(monkeypatch, tmp_path):
    monkeypatch.setenv("HARMONY_SYNAPSE_VENV", str(tmp_path / "venv"))
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / f".harmony-installed-{SYNAPSE_VERSION}").touch()

    def no_subprocess(*args, **kwargs):
        raise AssertionError("nothing should run")

    monkeypatch.setattr(subprocess, "run", no_subprocess)
    said = []
    assert ensure_synapse(said.append) == tmp_path / "venv" / "bin" / "python"
    assert said == []


def test_a_failed_install_says_what_failed_and_is_retried_next_time(monkeypatch, tmp_path):
    monkeypatch.setenv("HARMONY_SYNAPSE_VENV", str(tmp_path / "venv"))
    monkeypatch.setattr(sys, "executable", "/bin/false")
    said = []
    with pytest.raises(SynapseInstallError, match=r"/bin/false -m venv .* exit status 1"):
        ensure_synapse(said.append)
    assert said == [
        f"Installing Synapse {SYNAPSE_VERSION} into {tmp_path / 'venv'} "
        "(first run only, about 30 s)...",
        "  creating its venv...",  # the step that failed is the last one said
    ]
    with pytest.raises(SynapseInstallError):
        ensure_synapse()  # no stamp was left behind: it tries again
