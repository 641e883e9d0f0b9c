"""The house rules of docs/DESIGN.md that code can break silently: one direction of imports between the
packages, a service that loads nothing of training, a Bento that ships none of it."""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("events", "models", "registry", "training", "serving", "audiences", "experiments", "cli")
# package -> the project packages it may import (besides itself). cli drives everything; nothing imports cli.
ALLOWED = {
    "events": set(),
    "models": {"events"},
    "registry": set(),
    "training": {"events", "models", "registry"},
    "serving": {"events", "models", "registry"},
    "audiences": {"events", "models", "registry", "serving"},  # serving's framework-free engine: one answer everywhere
    "experiments": {"events", "registry"},  # the readout reads logs and events, and tracks; never the service
    "cli": {"events", "models", "registry", "training", "serving", "audiences", "experiments"},
}
FRAMEWORKS = ("lightning", "mlflow", "optuna", "bentoml", "optuna_integration")


def imports_of(path: Path) -> set[str]:
    """Top-level names of every module a file imports, at module level or inside functions."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_go_one_way(package: str) -> None:
    wrong = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        bad = (imports_of(path) & set(PACKAGES)) - ALLOWED[package] - {package}
        if bad:
            wrong[str(path.relative_to(ROOT))] = sorted(bad)
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}: {wrong}"


def test_models_know_nothing_of_the_frameworks() -> None:
    used = {str(p.relative_to(ROOT)): sorted(imports_of(p) & set(FRAMEWORKS)) for p in (ROOT / "models").rglob("*.py")}
    assert not {k: v for k, v in used.items() if v}


def test_the_service_loads_no_training_code() -> None:
    code = ("import json, sys; import serving.service; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('training', 'cli') "
            "or m.startswith(('events.loaders', 'events.simulator')))))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_batch_scoring_loads_neither_bentoml_nor_training_code() -> None:
    code = ("import json, sys; import audiences.score, cli.commands.score; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('training', 'bentoml') "
            "or m == 'serving.service')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_the_bento_ships_no_training_tuning_loader_or_simulator_code() -> None:
    include = yaml.safe_load((ROOT / "bentofile.yaml").read_text())["include"]
    assert not [p for p in include if p.startswith(("training", "cli", "events/loaders", "events/simulator", "events/**"))]
    # ... and what the service imports from the project is all inside it
    shipped = {Path(p) for pattern in include for p in ROOT.glob(pattern)}
    for path in (ROOT / "serving").glob("*.py"):
        for module in ("events.schema", "events.config_io", "events.errors", "events.exposures"):
            if module in path.read_text():
                assert ROOT / (module.replace(".", "/") + ".py") in {ROOT / p for p in shipped}
