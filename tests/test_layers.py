"""Imports run downwards only: the rules and the ballot cryptography know nothing of
storage or use cases, storage knows nothing of use cases (README, Layout)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "harmony_matrix"

#: What each layer may import from the package, besides itself.
BASE = {"errors", "i18n", "matrix_ids"}
ALLOWED = {
    "constitution": BASE,
    "voting": BASE,
    "storage": BASE | {"constitution", "voting", "resources"},
    "importers": BASE | {"constitution", "storage", "config"},
    "services": BASE | {"constitution", "voting", "storage", "importers", "config"},
    # The bot's handlers parse, call one use case, render: never a rule or a table.
    # metrics: the Prometheus definitions both front ends share (harmony_matrix/metrics.py).
    "bot": BASE | {"services", "config", "metrics"},
    # Likewise the web companion's handlers (resources: its templates and static files).
    "companion": BASE | {"services", "config", "resources", "metrics"},
    # A tool the tests and the demo run, not part of the product's logic.
    "homeserver": set(),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {n.split(".")[1] for n in names if n.startswith("harmony_matrix.")}
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_a_layer_imports_only_the_layers_below_it(layer):
    wrong = {
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in (PACKAGE / layer).rglob("*.py")
        for name in _imports(path) - ALLOWED[layer] - {layer}
    }
    assert wrong == set()


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("from harmony_matrix.services.ballots import cast_ballot\n")
    assert _imports(module) == {"services"}
