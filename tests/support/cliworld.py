"""A small world for command-line tests: the shipped declarations in a git repository and a
Moodle emulator standing for the ``prelude`` platform (no general cohorts, so no APOGÉE or
directory is needed)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import git
from click.testing import CliRunner, Result

from reconciler.cli import main
from reconciler.emulator import EmulatorConfig, MoodleEmulator

REPO = Path(__file__).resolve().parents[2]
TOKEN = "cli-token"
NOW = "2026-11-28T02:00:00Z"
MEMBERS = ["fc-amartin", "fc-bnguyen", "fc-crobert"]


@dataclass
class CliWorld:
    repo: Path
    emu: MoodleEmulator

    @property
    def env(self) -> dict[str, str]:
        return {"PRELUDE_URL": self.emu.url, "PRELUDE_TOKEN": TOKEN}

    def run(self, *args: str) -> Result:
        """``reconcile --repo REPO ARGS`` with the emulator's URL and token; never raises."""
        return CliRunner().invoke(main, ["--repo", str(self.repo), *args], env=self.env)


def make_repo(tmp: Path) -> Path:
    repo = tmp / "repo"
    shutil.copytree(REPO / "cohorts", repo / "cohorts")
    (repo / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    r = git.Repo.init(repo)
    r.git.add(A=True)
    r.index.commit("declarations")
    return repo


@contextmanager
def cli_world(tmp: Path) -> Iterator[CliWorld]:
    repo = make_repo(tmp)
    with MoodleEmulator(EmulatorConfig(token=TOKEN)) as emu:
        emu.seed(
            {
                "categories": [{"name": "Formations", "idnumber": "CAT-F"}],
                "courses": [
                    {
                        "shortname": "PRELUDE-METHODO",
                        "fullname": "Méthodologie",
                        "category_idnumber": "CAT-F",
                    }
                ],
                "users": [
                    {"username": u, "firstname": u, "lastname": "X", "email": f"{u}@x.fr"}
                    for u in MEMBERS
                ],
            }
        )
        yield CliWorld(repo, emu)
