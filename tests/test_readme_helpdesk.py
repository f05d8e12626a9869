"""The README's "Help desk" section shows a real ``reconcile explain`` output (issue 16)."""

from __future__ import annotations

from pathlib import Path

from support.readme_explain import example_explain, readme_block, same_but_seconds
from support.slapd import Slapd

from reconciler.demo import data as demo_data

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_shows_a_real_explain(
    tmp_path: Path, slapd: Slapd, sources_data: demo_data.DemoData
) -> None:
    made = example_explain(tmp_path, sources_data, slapd.environ())
    shown = readme_block(README.read_text(encoding="utf-8"))
    assert same_but_seconds(shown, made), (
        "the README's explain example is not what the code prints now; run "
        "`python tests/support/readme_explain.py` and paste its output\n" + made)
