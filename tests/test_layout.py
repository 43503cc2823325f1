"""The layout: imports only point down (docs/architecture.md), and backends never import each other.

Every import counts, also one inside a function: a lazy import that points up is still a
cycle waiting to happen. Each module of shared/ belongs to a unit (a package such as
``shared.bot``, or a top module such as ``shared.tagging``), and ``ALLOWED`` says which units
each unit may import. A unit may always import itself.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# unit -> the units it may import (besides itself)
ALLOWED = {
    "shared.errors": set(),
    "shared.files": set(),
    "shared.records": {"shared.errors"},
    "shared.filters": {"shared.errors"},
    "shared.tagging": {"shared.errors", "shared.filters"},
    "shared.sandbox": set(),
    "shared.state": {"shared.errors", "shared.files"},
    "shared.generation": {"shared.errors", "shared.files", "shared.tagging"},
    "shared.bot": {"shared.errors", "shared.records", "shared.filters", "shared.tagging"},
    "shared.config": {"shared.errors", "shared.filters", "shared.generation"},
    "shared.training": {"shared.errors", "shared.files", "shared.records", "shared.filters", "shared.tagging",
                        "shared.generation", "shared.state", "shared.config"},
    "shared.cli": {"shared.errors", "shared.config", "shared.state"},
    # the operator console: a read-only view of the state DB, the config, job runs and model runs
    "shared.console": {"shared.errors", "shared.config", "shared.state", "shared.training", "shared.cli"},
    "shared.original": {"shared.errors", "shared.config", "shared.filters"},
}
SHARED_UNITS = set(ALLOWED)
ALLOWED["jobs"] = SHARED_UNITS
ALLOWED["run"] = SHARED_UNITS | {"jobs"}


def unit_of(module: str) -> str | None:
    """The unit a dotted module name belongs to (None: not ours)."""
    if module == "run" or module.startswith("jobs"):
        return "run" if module == "run" else "jobs"
    for unit in sorted(ALLOWED, key=len, reverse=True):
        if module == unit or module.startswith(unit + "."):
            return unit
    return None


def is_module(dotted: str) -> bool:
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted name) of everything ``path`` imports from shared/, jobs/ or run."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # "from shared.state import db" imports the module shared.state.db; "from
            # shared.generation.model import Model" imports shared.generation.model
            found += [(node.lineno, f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
                      for alias in node.names]
    return [(line, target) for line, target in found if unit_of(target)]


def our_modules():
    files = sorted((ROOT / "shared").rglob("*.py")) + sorted((ROOT / "jobs").rglob("*.py")) + [ROOT / "run.py"]
    return [path for path in files if "__pycache__" not in path.parts and path != ROOT / "shared" / "__init__.py"]


def test_every_module_of_shared_belongs_to_a_unit():
    assert [module_name(p) for p in our_modules() if unit_of(module_name(p)) is None] == []


@pytest.mark.parametrize("path", our_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_point_down(path):
    unit = unit_of(module_name(path))
    upward = [f"{path.relative_to(ROOT)}:{line} imports {target}"
              for line, target in imports(path)
              if unit_of(target) != unit and unit_of(target) not in ALLOWED[unit]]
    assert upward == []


def test_generation_backends_import_only_the_interface():
    """A backend imports the Model interface and the conversion cache, never another backend."""
    package = ROOT / "shared" / "generation"
    common = ("model.py", "conversion.py")
    backends = [p for p in package.glob("*.py") if p.name not in ("__init__.py",) + common]
    assert {p.stem for p in backends} >= {"pytorch", "ct2", "openvino"}
    for path in backends + [package / name for name in common]:
        inside = [target for _, target in imports(path) if target.startswith("shared.generation")]
        allowed = set() if path.name in common else {"shared.generation.model", "shared.generation.conversion"}
        assert set(inside) <= allowed, f"{path.name} imports {sorted(set(inside) - allowed)}"


def test_nothing_in_shared_imports_jobs_or_run():
    for path in (ROOT / "shared").rglob("*.py"):
        assert not [t for _, t in imports(path) if unit_of(t) in ("jobs", "run")], path
