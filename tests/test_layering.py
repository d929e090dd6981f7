"""The package is layered in pipeline order: a module imports only modules of its own stage or of
an earlier one (read from the source with ast, lazy imports inside functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "neurocompile"

# Stages in pipeline order: the first component of a module's path inside the package.
STAGES = ["__init__", "errors", "numerics", "targets", "data", "ir", "semantics", "frontend", "passes", "partition", "compiler", "backends", "evaluation", "reports", "cli"]


def stage_of(module: str) -> int:
    """`neurocompile.partition.place` -> the index of 'partition' in STAGES."""
    parts = module.split(".")
    if parts[0] != "neurocompile":
        raise ValueError(module)
    head = parts[1] if len(parts) > 1 else "__init__"
    if head not in STAGES:
        raise KeyError(f"module {module} belongs to no stage: add '{head}' to STAGES in its pipeline position")
    return STAGES.index(head)


def module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1] if len(parts) > 1 else parts
    return ".".join(parts)


def imports_of(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import of the package in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = module_name(path, root)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "neurocompile"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] != "neurocompile":
                continue
            if node.module is None or name == "neurocompile":  # `from . import x`: x may be a module
                found += [(node.lineno, f"{name}.{a.name}") for a in node.names]
            else:
                found.append((node.lineno, name))
    return found


def _is_module(name: str, root: Path) -> bool:
    path = root.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def layering_violations(root: Path = PACKAGE) -> list[str]:
    out = []
    for path in sorted(root.rglob("*.py")):
        here = module_name(path, root)
        for line, name in imports_of(path, root):
            if not _is_module(name, root):  # `from neurocompile import __version__`: a name, not a module
                name = name.rpartition(".")[0]
            if stage_of(name) > stage_of(here):
                out.append(f"{path.relative_to(root.parent)}:{line}: {here} ({STAGES[stage_of(here)]}) imports {name} ({STAGES[stage_of(name)]}), a later stage")
    return out


def test_every_module_imports_only_earlier_stages():
    assert layering_violations() == []


def test_every_package_folder_is_a_stage():
    for path in PACKAGE.rglob("*.py"):
        stage_of(module_name(path))  # raises for a folder or module missing from STAGES


def test_the_checker_sees_a_backward_import(tmp_path):
    """A later stage imported from an earlier one is reported, relative or absolute, lazy or not;
    an earlier one is not."""
    root = tmp_path / "neurocompile"
    files = {
        "__init__.py": "",
        "cli.py": "",
        "backends/__init__.py": "",
        "backends/sim.py": "from ..passes import probe\n",
        "passes/__init__.py": "",
        "passes/probe.py": "from ..backends.sim import Simulator\nfrom neurocompile import errors\n\ndef f():\n    import neurocompile.cli\n",
        "errors.py": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    found = layering_violations(root)
    assert len(found) == 2, found
    assert "neurocompile/passes/probe.py:1: neurocompile.passes.probe (passes) imports neurocompile.backends.sim (backends)" in found[0]
    assert "neurocompile/passes/probe.py:5:" in found[1] and "imports neurocompile.cli (cli)" in found[1]


@pytest.mark.parametrize("module, stage", [("neurocompile.ir.graph", "ir"), ("neurocompile", "__init__"), ("neurocompile.cli", "cli")])
def test_stage_of(module, stage):
    assert STAGES[stage_of(module)] == stage
