"""The package's stages import one way (DESIGN §2, README "Layout"): cli -> helpdesk,
gitlab, demo -> applying -> history -> planning -> declarations, sources, moodle -> settings,
clock, errors, resources, paramtext; the emulator imports nothing of the rest but paramtext
(Moodle's own PARAM_TEXT cleaning). Every import counts, including those under TYPE_CHECKING
and inside functions, since a type-only import still couples two modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reconciler"

# paramtext: Moodle's PARAM_TEXT (PHP strip_tags), pure: what the client side predicts and the
# emulator reproduces, one mirror tested against PHP and the real site.
BASE = {"settings", "clock", "errors", "resources", "paramtext"}
SOURCES = BASE | {"declarations", "sources", "moodle"}
# Each unit (a sub-package or top-level module of reconciler/) and the units it may import.
# A new top-level module or package needs its line here: that is where its layer is decided.
ALLOWED: dict[str, set[str]] = {
    "settings": set(),
    "clock": set(),
    "errors": set(),
    "resources": set(),
    "paramtext": set(),
    "declarations": BASE,
    "sources": BASE,
    "moodle": BASE,
    "emulator": {"paramtext"},
    "planning": SOURCES,
    "history": SOURCES | {"planning"},
    "applying": SOURCES | {"planning", "history"},
    "helpdesk": SOURCES | {"planning", "applying", "history"},
    # The CI jobs plan and apply (reconcile ci), so the GitLab side sits above applying.
    "gitlab": SOURCES | {"planning", "applying"},
    "adoption": SOURCES | {"planning", "applying"},
    "demo": SOURCES | {"planning", "applying", "emulator"},
    "cli": SOURCES
    | {"planning", "applying", "gitlab", "demo", "emulator", "adoption", "history", "helpdesk"},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(path: Path) -> set[str]:
    """Absolute names of the reconciler modules that ``path`` imports."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            # `from . import x` imports the submodule x.
            names |= {f"{target}.{alias.name}" for alias in node.names} | {target}
    return {n for n in names if n == "reconciler" or n.startswith("reconciler.")}


def _unit(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_unit_has_a_layer() -> None:
    units = {_unit(_module_name(p)) for p in _modules()} - {None}
    assert units <= ALLOWED.keys(), (
        f"new units {sorted(units - ALLOWED.keys())}: give each its line in ALLOWED"
    )


def test_imports_run_one_way() -> None:
    wrong = []
    for path in _modules():
        unit = _unit(_module_name(path))
        if unit is None:
            continue  # reconciler/__init__.py: the library face may gather any stage
        for target in sorted(_imported(path)):
            other = _unit(target)
            if other in (unit, None) or other not in ALLOWED:
                continue
            if other not in ALLOWED.get(unit, set()):
                wrong.append(f"{path.relative_to(PACKAGE.parent)} imports {target}")
    assert not wrong, "imports against the stage order:\n" + "\n".join(wrong)


def test_the_checker_sees_relative_and_nested_imports() -> None:
    """The rule above is only as good as the import reader: it must resolve relative imports
    from modules and from packages, and see imports inside functions."""
    planner = PACKAGE / "planning" / "planner.py"
    assert "reconciler.planning.failsafe" in _imported(planner)
    assert "reconciler.settings" in _imported(planner)
    desired = PACKAGE / "planning" / "desired.py"
    assert "reconciler.sources" in _imported(desired)  # under TYPE_CHECKING
    cli = PACKAGE / "cli" / "__init__.py"
    assert "reconciler.cli.plan" in _imported(cli)
