"""Build step: the wheel carries the repository's top-level schemas/ as reconciler/schemas/.

Everything else is in pyproject.toml. schemas/ stays at the top level because people and
editors use it there; the installed package must validate without a checkout, so the same
files are copied, byte for byte, into the built package (reconciler.resources finds them).
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

SCHEMAS = Path(__file__).resolve().parent / "schemas"


class BuildWithSchemas(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout's schemas/ directly
        target = Path(self.build_lib) / "reconciler" / "schemas"
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted(SCHEMAS.glob("*.json")):
            shutil.copyfile(source, target / source.name)


setup(cmdclass={"build_py": BuildWithSchemas})
