"""A merge request's world for the CI job tests: a GitLab-like git remote (a bare ``origin``),
a working clone with branches, declarations of the ``prelude`` platform (no sources needed)
and helpers to commit, push and move branches the way people do.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import git
import yaml

REPO = Path(__file__).resolve().parents[2]
USERS = [f"e2600{n}" for n in range(1, 10)]


def cohort_file(idnumber: str, members: list[str], **extra: Any) -> str:
    doc = {
        "idnumber": idnumber,
        "name": idnumber.removeprefix("man-").replace("-", " ").title(),
        "owners": ["prepa@unicaen.fr"],
        "members": members,
        **extra,
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def syncs_file(course: str, syncs: list[dict[str, Any]]) -> str:
    doc = {"course": course, "owners": ["prepa@unicaen.fr"], "syncs": syncs}
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def moodle_seed(courses: tuple[str, ...] = ("PRELUDE-METHODO", "PRELUDE-ANGLAIS")) -> dict:
    """The prelude site: two courses and the users the declarations name."""
    return {
        "categories": [{"name": "Prelude", "idnumber": "CAT-P"}],
        "courses": [
            {"shortname": c, "fullname": c.title(), "category_idnumber": "CAT-P"} for c in courses
        ],
        "users": [
            {"username": u, "firstname": u, "lastname": "Prelude", "email": f"{u}@example.org"}
            for u in USERS
        ],
    }


class GitWorld:
    """``work`` is a clone of the bare ``origin``, whose ``main`` is the default branch."""

    def __init__(self, root: Path, platforms: dict[str, Any] | None = None) -> None:
        self.origin_path = root / "origin.git"
        self.work = root / "work"
        self.commits = 0
        (self.work / "cohorts" / "prelude" / "cohorts").mkdir(parents=True)
        (self.work / "cohorts" / "prelude" / "syncs").mkdir(parents=True)
        doc = yaml.safe_load((REPO / "cohorts" / "platforms.yaml").read_text(encoding="utf-8"))
        for name, overrides in (platforms or {}).items():
            doc["platforms"][name].update(overrides)
        (self.work / "cohorts" / "platforms.yaml").write_text(
            yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )
        (self.work / ".gitignore").write_text(".reconciler/\nplans/\n*.json\n*.xml\n")
        self.repo = git.Repo.init(self.work, initial_branch="main")
        with self.repo.config_writer() as cw:
            cw.set_value("user", "name", "Claire Lefèvre")
            cw.set_value("user", "email", "claire@example.org")
        self.commit("platforms")
        git.Repo.init(self.origin_path, bare=True, initial_branch="main")
        self.repo.create_remote("origin", str(self.origin_path))
        self.repo.git.push("-q", "origin", "main")
        self.repo.git.remote("set-head", "origin", "main")

    def write(self, relative: str, text: str) -> None:
        path = self.work / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")

    def remove(self, relative: str) -> None:
        (self.work / relative).unlink()

    def commit(self, message: str) -> str:
        """Commit everything; dates are fixed (a day a commit) so that hashes are repeatable."""
        self.commits += 1
        when = f"2026-11-{self.commits:02d}T10:00:00 +0100"
        self.repo.git.add(A=True)
        self.repo.index.commit(message, author_date=when, commit_date=when)
        return self.repo.head.commit.hexsha

    def push(self) -> None:
        self.repo.git.push("-q", "origin", self.repo.active_branch.name)

    def checkout(self, branch: str, new: bool = False) -> None:
        if new:
            self.repo.git.checkout("-q", "-b", branch)
        else:
            self.repo.git.checkout("-q", branch)

    def merge_result(self, source: str, target: str = "main") -> tuple[str, str]:
        """Check out what GitLab builds for a merged-results pipeline (a detached merge commit
        of ``source`` into ``target``); returns (merge commit, target commit)."""
        target_sha = self.repo.commit(target).hexsha
        self.repo.git.checkout("-q", "--detach", target)
        self.repo.git.merge("-q", "--no-ff", "--no-edit", source)
        return self.repo.head.commit.hexsha, target_sha

    def copy_to(self, where: Path) -> None:
        shutil.copytree(self.work, where)
