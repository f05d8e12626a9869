"""Files the code reads at run time and ships with it: the JSON Schemas.

The schemas live at the repository's top level (``schemas/``: people and editors use them);
this module is the one place that finds them.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

SCHEMA_DIR = Path(__file__).resolve().parents[1] / "schemas"


@cache
def schema(name: str) -> dict[str, Any]:
    """The JSON Schema ``schemas/<name>`` as a dict (read once)."""
    return json.loads((SCHEMA_DIR / name).read_text(encoding="utf-8"))
