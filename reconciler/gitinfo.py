"""What commit the declarations come from, and whether the work tree is dirty (gitpython)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import git


@dataclass(frozen=True)
class GitInfo:
    commit: str | None
    dirty: bool


def git_info(repo: Path) -> GitInfo:
    """Commit and dirty flag of the repository holding ``repo`` (None outside git)."""
    try:
        r = git.Repo(repo, search_parent_directories=True)
        commit = r.head.commit.hexsha if r.head.is_valid() else None
        return GitInfo(commit=commit, dirty=r.is_dirty(untracked_files=True, path="cohorts"))
    except (git.InvalidGitRepositoryError, git.NoSuchPathError, ValueError):
        return GitInfo(commit=None, dirty=False)
