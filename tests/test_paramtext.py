"""reconciler.paramtext: PARAM_TEXT as Moodle applies it to web-service answers, and the
names that survive it.

The examples marked "real" are what the real Moodle 4.5 site answered when a cohort with
that name had a cohort-sync instance: ``local_ws_enrolcohort_get_instances`` either listed
it or failed with ``invalidresponse`` (issue 10, finding 1). The mirror is checked against
PHP itself (``strip_tags``) where ``php`` is installed, and against Moodle's own
``clean_param(..., PARAM_TEXT)`` on the real site.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.realmoodle import RealMoodle

from reconciler.paramtext import clean_text, is_safe_text, markup_problem, safe_text, strip_tags

# Real site: name of the synced cohort -> did get_instances still answer?
REAL_ANSWERS = {
    "a < b": True,
    "Bac <2 ans": False,
    "a > b": True,
    "x & y": True,
    "<b>x</b>": False,
    "L1 <Droit>": False,
    "a <": False,
    "a<": False,
    '<lang lang="fr">Droit</lang>': True,
    "x <!-- c -->": False,
    "Bac+2 <=": False,
    "a <3": False,
}

# Pieces that drive every state of php_strip_tags_ex (tags, comments, PHP and XML
# processing instructions, doctype, quotes, multilang markup).
PIECES = [*"<>!?-'\"/\\ab lLmMxXEe\t\n()=é€", '<lang lang="fr">', "</lang>",
          '<span lang="fr" class="multilang">', "</span>", "<!--", "-->", "<?xml",
          "<!DOCTYPE", "<b>", "</b>", "\x00"]


def _cases(count: int, seed: int) -> list[str]:
    rnd = random.Random(seed)
    return ["".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, 14))) for _ in range(count)]


@pytest.mark.parametrize(("name", "answered"), sorted(REAL_ANSWERS.items()))
def test_safe_means_what_the_real_site_answered(name: str, answered: bool) -> None:
    assert is_safe_text(name) is answered
    assert (markup_problem(name) is None) is answered


def test_examples() -> None:
    assert strip_tags("L1 <Droit>") == "L1 "
    assert strip_tags("Bac <2 ans") == "Bac "
    assert strip_tags("a < b") == "a < b"  # '<' before white space is no tag
    assert clean_text('<lang lang="fr">Droit</lang><lang lang="en">Law</lang>') == (
        '<lang lang="fr">Droit</lang><lang lang="en">Law</lang>')
    assert clean_text('<lang lang="fr">Droit') == "Droit"  # unbalanced: all tags go
    assert safe_text("L1 <Droit>") == "L1 \u2039Droit\u203a"
    assert safe_text("Bac <2 ans") == "Bac \u20392 ans"
    assert safe_text("Master 2 > Licence") == "Master 2 > Licence"  # already safe: kept
    assert "'L1 '" in (markup_problem("L1 <Droit>") or "")


@given(st.text())
def test_safe_text_is_safe_idempotent_and_keeps_safe_names(text: str) -> None:
    made = safe_text(text)
    assert is_safe_text(made) and len(made) == len(text)  # never empty for a name
    assert safe_text(made) == made
    if is_safe_text(text):
        assert made == text
    else:
        assert "<" not in made


@given(st.lists(st.sampled_from(PIECES), max_size=20).map("".join))
def test_cleaning_is_a_fixed_point(text: str) -> None:
    # What Moodle stores after cleaning is itself safe (validate_param would accept it).
    assert is_safe_text(clean_text(text))


def _php(script: str, argv: list[str], cases: list[str]) -> list[list[str]]:
    done = subprocess.run(["php", "-r", script, *argv], input=json.dumps(cases),
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


@pytest.mark.skipif(shutil.which("php") is None, reason="php is not installed")
def test_strip_tags_matches_php() -> None:
    cases = _cases(5000, seed=10)
    script = ('$in = json_decode(file_get_contents("php://stdin"), true);'
              'echo json_encode(array_map(fn($s) => [strip_tags($s)], $in));')
    answers = _php(script, [], cases)
    wrong = [(c, a[0], strip_tags(c)) for c, a in zip(cases, answers, strict=True)
             if a[0] != strip_tags(c)]
    assert not wrong, wrong[:10]


@pytest.mark.real
def test_clean_text_matches_moodle_clean_param(real_moodle: RealMoodle) -> None:
    if real_moodle.dir is None or shutil.which("php") is None:
        pytest.skip("needs the real site's folder (REALMOODLE_DIR) and php")
    config = Path(real_moodle.dir) / "moodle" / "config.php"
    cases = _cases(5000, seed=11) + list(REAL_ANSWERS)
    script = ('define("CLI_SCRIPT", true); require($argv[1]);'
              '$in = json_decode(file_get_contents("php://stdin"), true);'
              'echo json_encode(array_map(fn($s) => [clean_param($s, PARAM_TEXT)], $in));')
    answers = _php(script, [str(config)], cases)
    wrong = [(c, a[0], clean_text(c)) for c, a in zip(cases, answers, strict=True)
             if a[0] != clean_text(c)]
    assert not wrong, wrong[:10]
