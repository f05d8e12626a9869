"""What the code reads ships with it (issue 11, step 6): a wheel built from the repository,
installed in a fresh virtual environment outside the checkout, runs ``reconcile demo`` and
validates a copy of ``cohorts/``, reading schemas byte-identical to the checkout's.

The fresh environment gets the wheel by pip; its dependencies are borrowed from the test
environment through a ``.pth`` line (no network, and the editable install's finder is not
processed that way, so only the wheel's ``reconciler`` can be imported).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from reconciler import resources

REPO = Path(__file__).resolve().parent.parent
SKIP = {".git", ".venv", "build", "dist", "__pycache__", ".pytest_cache", ".ruff_cache",
        ".hypothesis", ".reconciler"}  # fmt: skip


def _copy_source(target: Path) -> Path:
    def ignore(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP or n.endswith(".egg-info")}

    shutil.copytree(REPO, target, ignore=ignore)
    return target


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, f"{args}: {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the fresh environment's bin folder, its reconciler package folder)."""
    root = tmp_path_factory.mktemp("wheel")
    source = _copy_source(root / "src")
    _run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", root / "dist", source,
         cwd=root)  # fmt: skip
    [wheel] = (root / "dist").glob("moodle_cohort_reconciler-*.whl")
    venv = root / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=root)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel,
         cwd=root)  # fmt: skip
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=root).strip())  # fmt: skip
    (site / "borrowed_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    package = Path(_run(python, "-c", "import reconciler; print(reconciler.__file__)",
                        cwd=root).strip()).parent  # fmt: skip
    assert package.is_relative_to(venv), package
    return venv / "bin", package


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECONCILER_", "PYTHON"))}
    env["HOME"] = env.get("HOME", "/tmp")
    return env


def test_the_wheel_carries_the_checkout_schemas_byte_for_byte(installed: tuple[Path, Path]) -> None:
    _, package = installed
    shipped = sorted(p.name for p in (package / "schemas").glob("*.json"))
    assert shipped == sorted(p.name for p in (REPO / "schemas").glob("*.json"))
    for name in shipped:
        assert (package / "schemas" / name).read_bytes() == (REPO / "schemas" / name).read_bytes()
    # This checkout (editable) reads the top-level folder itself.
    assert Path(str(resources.schema_dir())) == REPO / "schemas"


def test_the_installed_wheel_runs_the_demo_outside_the_checkout(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir, _ = installed
    out = _run(bin_dir / "reconcile", "demo", "--students", "80", cwd=tmp_path, env=_clean_env())
    assert "1. First plan and apply" in out and "4. And once more: converged" in out
    assert "[collegium] Plan: no changes." in out.split("4. And once more")[1]


def test_the_installed_wheel_validates_a_copy_of_the_declarations(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    bin_dir, _ = installed
    shutil.copytree(REPO / "cohorts", tmp_path / "cohorts")
    out = _run(bin_dir / "reconcile", "validate", "--today", "2026-11-28", cwd=tmp_path,
               env=_clean_env())  # fmt: skip
    assert "files checked" in out
    broken = tmp_path / "cohorts" / "prelude" / "cohorts" / "man-prepa-ifsi.yaml"
    broken.write_text(broken.read_text(encoding="utf-8") + "colour: blue\n", encoding="utf-8")
    done = subprocess.run(
        [str(bin_dir / "reconcile"), "validate", "--today", "2026-11-28"],
        cwd=tmp_path, env=_clean_env(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1 and "colour" in done.stdout, done.stdout + done.stderr
