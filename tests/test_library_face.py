"""The library face (issue 11, step 7): the public names import from ``reconciler`` itself,
each public function on the main path says what it takes, gives and raises."""

from __future__ import annotations

import inspect
import subprocess
import sys

import reconciler


def test_every_public_name_imports_from_the_package() -> None:
    for name in reconciler.__all__:
        assert getattr(reconciler, name) is not None, name
    assert reconciler.make_plan.__module__ == "reconciler.applying.runner"
    assert issubclass(reconciler.FailsafeTripped, reconciler.ReconcilerError)
    assert issubclass(reconciler.MoodleError, reconciler.ReconcilerError)


def test_importing_the_emulator_does_not_load_the_rest() -> None:
    code = (
        "import sys, reconciler.emulator; print(sorted(m for m in sys.modules if "
        "m.startswith('reconciler.') and not m.startswith('reconciler.emulator')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # paramtext: Moodle's own PARAM_TEXT cleaning, pure, shared with the client side
    assert out.stdout.strip() == "['reconciler.paramtext']"


# The Moodle client's own methods are documented with the client (they mirror Moodle's
# functions one to one); this test covers the reconciler's main path.
NOT_HERE = {"MoodleClient"}


def test_public_functions_on_the_main_path_have_docstrings() -> None:
    missing = []
    for name in sorted(set(reconciler.__all__) - NOT_HERE):
        value = getattr(reconciler, name)
        if not (inspect.isfunction(value) or inspect.isclass(value)):
            continue
        if not inspect.getdoc(value):
            missing.append(name)
        if inspect.isclass(value):
            for attr, member in vars(value).items():
                if attr.startswith("_") or not inspect.isfunction(member):
                    continue
                if not inspect.getdoc(member):
                    missing.append(f"{name}.{attr}")
    assert not missing, f"no docstring: {missing}"
