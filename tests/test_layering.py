"""Dependencies run one way: labels <- inference <- training <- experiments."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("labels", "inference", "training", "experiments")
ML_LIBRARIES = {"numpy", "pandas", "scipy", "sklearn", "torch", "transformers", "datasets", "mlflow", "pyarrow"}
# What each package may not import: every package above it, and for labels any ML library.
FORBIDDEN = {
    "labels": {"inference", "training", "experiments"} | ML_LIBRARIES,
    "inference": {"training", "experiments"},
    "training": {"experiments"},
    "experiments": set(),
}


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def layering_violations(root: Path) -> list[str]:
    out = []
    for package, forbidden in FORBIDDEN.items():
        for path in sorted((root / package).rglob("*.py")):
            for bad in sorted(imported_modules(path) & forbidden):
                out.append(f"{path.relative_to(root)} imports {bad}")
    return out


def test_imports_point_one_way():
    assert layering_violations(ROOT) == []


@pytest.mark.parametrize(
    "package,source,expected",
    [
        ("inference", "from training.data import load_splits\n", "imports training"),
        ("labels", "import numpy as np\n", "imports numpy"),
        ("labels", "import sklearn.linear_model\n", "imports sklearn"),
        ("training", "from experiments.cli import app\n", "imports experiments"),
    ],
)
def test_a_wrong_arrow_is_caught(tmp_path, package, source, expected):
    for name in PACKAGES:
        (tmp_path / name).mkdir()
    (tmp_path / package / "bad.py").write_text(source)
    violations = layering_violations(tmp_path)
    assert violations == [f"{package}/bad.py {expected}"]


def test_every_package_imports():
    import importlib

    for name in PACKAGES:
        assert importlib.import_module(name).__doc__
