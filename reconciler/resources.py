"""Files the code reads at run time and ships with it: the JSON Schemas.

The schemas live at the repository's top level (``schemas/``: people and editors use them).
A wheel carries a copy in ``reconciler/schemas/`` (``setup.py`` copies them at build time,
byte for byte; a test checks it); in a checkout or an editable install the package has no
copy and the top-level folder is read. This module is the one place that finds them.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

CHECKOUT_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@cache
def schema_dir() -> Traversable:
    """Where the schemas are read from: the installed package's copy, else the checkout's."""
    shipped = resources.files(__package__) / "schemas"
    return shipped if shipped.is_dir() else CHECKOUT_SCHEMAS


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``schemas/<name>`` as a dict (read once). Raises ``FileNotFoundError``
    for an unknown name."""
    return json.loads((schema_dir() / name).read_text(encoding="utf-8"))
