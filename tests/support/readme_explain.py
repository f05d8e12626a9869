"""The example of the README's "Help desk" section, made by a real run.

The demo world of the end-to-end tests (APOGÉE in sqlite, a real slapd, a Moodle emulator,
the shipped declarations committed at a fixed date so that commits are the same every run):
a tutor adds a student of L1 histoire to the late-enrolment cohort, the nightly apply runs,
the student's IA is cancelled the next day, then ``reconcile explain`` the morning after. ``test_readme_shows_a_real_explain`` checks that the README shows exactly
this output (the seconds of its last line, commits and plan digests aside); run ``python tests/support/readme_explain.py``
from the repository root to print it again (it starts its own slapd).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

import git

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from support.world import REPO, open_world, shipped_seed, write_platforms  # noqa: E402

from reconciler.demo import data as demo_data  # noqa: E402

START = "<!-- example explain: made by tests/support/readme_explain.py -->"
END = "<!-- end of the example explain -->"
FIRST_NIGHT = "2026-11-28T02:00:00Z"
EXPLAINED = "2026-11-29T08:30:00Z"
AUTHOR = git.Actor("Claire Lefèvre", "claire.lefevre@unicaen.fr")
DATE = "2026-09-01T10:00:00 +0200"
TUTOR = git.Actor("Marc Duval", "marc.duval@unicaen.fr")
TUTOR_DATE = "2026-10-12T16:20:00 +0200"
LATE = "cohorts/ecampus/cohorts/man-retardataires-l1-histoire.yaml"
SECONDS = re.compile(r"in \d+\.\d+ s$", re.MULTILINE)
# Commits and plan digests follow platforms.yaml and the cohorts, which other changes edit.
HASHES = re.compile(r"\b[0-9a-f]{12}\b|sha256:[0-9a-f]{12,64}")


def committed_repo(tmp: Path) -> Path:
    """The shipped declarations, committed by one author at a fixed date."""
    repo = tmp / "repo"
    shutil.copytree(REPO / "cohorts", repo / "cohorts")
    write_platforms(repo, {"sources": {"ldap": {"page_size": 40}}})
    (repo / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    r = git.Repo.init(repo)
    r.git.add(A=True)
    r.index.commit("Declarations of the three platforms", author=AUTHOR, committer=AUTHOR,
                   author_date=DATE, commit_date=DATE)
    return repo


def example_explain(tmp: Path, data: demo_data.DemoData, ldap_env: dict[str, str]) -> str:
    """``reconcile explain`` of a student whose IA was cancelled after the night's apply."""
    repo = committed_repo(tmp)
    with open_world(tmp, repo, data, ldap_env, shipped_seed(data)) as world:
        etp, vrs = "L1HIS", "101"
        cod_ind, cod_etu = world.vet_members(f"{etp}-{vrs}")[0]
        late = repo / LATE
        late.write_text(late.read_text(encoding="utf-8") + f"  - e{cod_etu}\n", encoding="utf-8")
        r = git.Repo(repo)
        r.index.add([LATE])
        r.index.commit("Tutorat: un retardataire de plus", author=TUTOR, committer=TUTOR,
                       author_date=TUTOR_DATE, commit_date=TUTOR_DATE)
        code, out = world.run("apply", "-p", "ecampus", "--now", FIRST_NIGHT)
        assert code == 0, out
        with sqlite3.connect(world.apogee) as conn:  # cancelled in APOGÉE the next day
            conn.execute(
                "UPDATE ins_adm_etp SET eta_iae = 'A', dat_annul_res_iae = '2026-11-28'"
                " WHERE cod_anu = ? AND cod_ind = ? AND cod_etp = ? AND cod_vrs_vet = ?",
                (data.year, cod_ind, etp, vrs))
        code, out = world.run("explain", f"e{cod_etu}", "-p", "ecampus", "--now", EXPLAINED)
        assert code == 0, out
        return out.rstrip("\n")


def same_but_seconds(a: str, b: str) -> bool:
    """Whether two outputs differ at most by the measured seconds of their last line and by
    commit hashes and plan digests."""
    def plain(text: str) -> str:
        return HASHES.sub("<hash>", SECONDS.sub("in N s", text))

    return plain(a) == plain(b)


def readme_block(readme: str) -> str:
    """The example as the README shows it (between its markers, without the fence)."""
    body = readme.split(START, 1)[1].split(END, 1)[0].strip("\n")
    lines = body.splitlines()
    assert lines[0] == "```text" and lines[-1] == "```", "the example is a ```text block"
    return "\n".join(lines[1:-1])


if __name__ == "__main__":
    from conftest import SOURCES_SEED, SOURCES_STUDENTS
    from support.slapd import start_slapd

    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        sources = demo_data.generate(seed=SOURCES_SEED, students=SOURCES_STUDENTS)
        entries = [*sources.entries, *demo_data.anomaly_entries(sources)]
        server = start_slapd(work / "slapd", demo_data.directory_ldif(entries), size_limit=100)
        try:
            print(example_explain(work, sources, server.environ()))
        finally:
            server.stop()
