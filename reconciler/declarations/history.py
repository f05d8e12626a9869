"""The declarations' git history (gitpython): what a merge request changes, who added a line,
which commit the declarations come from and whether the work tree is dirty."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import git
import yaml

from ..errors import GitError
from .loader import DeclarationSet, Location, SyncDeclaration


def _repo(path: Path) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{path} is not in a git repository") from None


def _commit(repo: git.Repo, ref: str) -> git.Commit:
    try:
        return repo.commit(ref)
    except (git.BadName, ValueError):
        raise GitError(f"unknown git reference {ref!r}") from None


def changed_files(path: Path, ref: str) -> set[str]:
    """Files under cohorts/ that differ between ``ref`` and the work tree (new ones too),
    relative to the repository root."""
    repo = _repo(path)
    base = _commit(repo, ref)
    changed = set()
    for diff in base.diff(None):  # None: the work tree
        for name in (diff.a_path, diff.b_path):
            if name:
                changed.add(name)
    changed.update(repo.untracked_files)
    return {c for c in changed if c.startswith("cohorts/")}


def changed_between(path: Path, old: str, new: str) -> set[str]:
    """Files under cohorts/ that differ between two commits, relative to the repository root.

    Raises ``GitError`` when either reference is unknown."""
    repo = _repo(path)
    changed = set()
    for diff in _commit(repo, old).diff(_commit(repo, new)):
        changed.update(name for name in (diff.a_path, diff.b_path) if name)
    return {c for c in changed if c.startswith("cohorts/")}


def resolve(path: Path, ref: str) -> str:
    """The full commit hash ``ref`` names (a branch, a tag, ``HEAD^1``...); ``GitError`` if
    none."""
    return _commit(_repo(path), ref).hexsha


def fork_point(path: Path, target: str, head: str = "HEAD") -> str:
    """The commit where ``head`` forked from ``target`` (``git merge-base target head``).

    A merge request's own changes are those between this commit and its head: comparing with
    the target's tip instead would also count, reversed, whatever landed on the target since.
    Raises ``GitError`` for an unknown reference or unrelated histories."""
    repo = _repo(path)
    bases = repo.merge_base(_commit(repo, target), _commit(repo, head))
    if not bases:
        raise GitError(f"{head} and {target} share no history (no merge base)")
    return bases[0].hexsha


def fetch(path: Path, remote: str, branch: str) -> None:
    """``git fetch <remote> <branch>`` so that ``<remote>/<branch>`` is current; ``GitError``
    naming the branch when it fails (the message never carries the remote's URL)."""
    repo = _repo(path)
    try:
        repo.git.fetch("-q", remote, f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}")
    except git.GitCommandError:
        raise GitError(f"cannot fetch the target branch {branch!r} from {remote}") from None


def file_at(path: Path, ref: str, name: str) -> str | None:
    repo = _repo(path)
    try:
        blob = _commit(repo, ref).tree / name
    except KeyError:
        return None
    return blob.data_stream.read().decode("utf-8", errors="replace")


def _sync_keys(text: str | None) -> set[tuple[str, str]]:
    try:
        doc = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return set()
    items = doc.get("syncs") if isinstance(doc, dict) else None
    return {(str(i.get("cohort")), str(i.get("role"))) for i in items or [] if isinstance(i, dict)}


def _sync_items(text: str | None) -> dict[tuple[str, str], dict]:
    """(cohort, role) -> the whole entry plus the file's course, from one sync file's text."""
    try:
        doc = yaml.safe_load(text) if text else None
    except yaml.YAMLError:
        return {}
    if not isinstance(doc, dict) or not isinstance(doc.get("syncs"), list):
        return {}
    course = doc.get("course")
    return {
        (str(i.get("cohort")), str(i.get("role"))): {**i, "__course": course}
        for i in doc["syncs"]
        if isinstance(i, dict)
    }


def changed_syncs(path: Path, ref: str, decls: DeclarationSet) -> list[SyncDeclaration]:
    """The syncs added or changed since ``ref``: absent at ``ref`` (same file, cohort and
    role), or present with another value for any key (course, group, method, expires...)."""
    out: list[SyncDeclaration] = []
    before: dict[str, dict[tuple[str, str], dict]] = {}
    for sync in decls.syncs:
        name = sync.location.file
        if name not in before:
            before[name] = _sync_items(file_at(path, ref, name))
        now = _sync_items(_worktree_text(path, name)).get(
            (sync.cohort, sync.role)
        )
        if before[name].get((sync.cohort, sync.role)) != now:
            out.append(sync)
    return out


def _worktree_text(path: Path, name: str) -> str | None:
    try:
        return (Path(str(_repo(path).working_tree_dir)) / name).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None


def sync_changes(path: Path, ref: str, changed: set[str]) -> set[tuple[str, str, str, str]]:
    """(platform, course, cohort, role) of every sync entry that the ``changed`` files (paths
    from the repository root) add, change or remove between ``ref`` and the work tree."""
    out: set[tuple[str, str, str, str]] = set()
    for name in changed:
        parts = PurePosixPath(name).parts
        if len(parts) != 4 or parts[2] != "syncs":
            continue
        before = _sync_items(file_at(path, ref, name))
        now = _sync_items(_worktree_text(path, name))
        for key in before.keys() | now.keys():
            if before.get(key) != now.get(key):
                for entry in (before.get(key), now.get(key)):
                    if entry is not None:
                        out.add((parts[1], str(entry["__course"]), *key))
    return out


def new_entries(path: Path, ref: str, decls: DeclarationSet) -> set[str]:
    """Locations (``file:line``) of the cohorts and syncs that did not exist at ``ref``."""
    out: set[str] = set()
    for cohort in decls.cohorts:
        if file_at(path, ref, cohort.location.file) is None:
            out.add(str(cohort.location))
    before: dict[str, set[tuple[str, str]]] = {}
    for sync in decls.all_syncs():
        name = sync.location.file
        if name not in before:
            before[name] = _sync_keys(file_at(path, ref, name))
        if (sync.cohort, sync.role) not in before[name]:
            out.add(str(sync.location))
    return out


def focus(changed: set[str]) -> tuple[set[str], set[str]]:
    """(cohort idnumbers, course file stems) whose declaration files changed (a course whose
    shortname cannot be a file name has another stem: use ``courses_of`` for those)."""
    cohorts, courses = set(), set()
    for name in changed:
        parts = PurePosixPath(name).parts
        if len(parts) == 4 and parts[3].endswith(".yaml"):
            stem = PurePosixPath(parts[3]).stem
            if parts[2] == "cohorts":
                cohorts.add(stem)
            elif parts[2] == "syncs":
                courses.add(stem)
    return cohorts, courses


def changed_patterns(changed: set[str]) -> set[str]:
    """Names of the course patterns whose files changed (their courses are Moodle's to
    tell: the plan's ``patterns`` section names them)."""
    return {
        PurePosixPath(name).stem
        for name in changed
        if len(PurePosixPath(name).parts) == 4 and PurePosixPath(name).parts[2] == "patterns"
    }


@dataclass(frozen=True)
class AddedBy:
    commit: str
    author: str
    date: str


def added_by(path: Path, location: Location) -> AddedBy | None:
    """The commit that last wrote the line at ``location`` (where an entry starts, or the
    ``reviewed`` line of a cohort), None if uncommitted. Raises GitError outside git."""
    repo = _repo(path)
    try:
        blame = repo.blame("HEAD", location.file)
    except git.GitCommandError:
        return None
    line = 0
    for commit, lines in blame:
        line += len(lines)
        if line >= location.line:
            return AddedBy(
                commit.hexsha[:12],
                str(commit.author.name),
                commit.committed_datetime.date().isoformat(),
            )
    return None


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


def blame_line(path: Path, file: str, line: int) -> AddedBy | None:
    """The commit that last wrote line ``line`` of ``file`` (relative to the repository
    root) at HEAD: who added a member or a sync entry. None when the line is not committed
    (or outside git)."""
    try:
        repo = _repo(path)
        blame = repo.blame("HEAD", file, L=f"{line},{line}")
    except (GitError, git.GitCommandError, ValueError):
        return None
    for commit, _ in blame or []:
        day = commit.committed_datetime.date().isoformat()
        return AddedBy(commit.hexsha[:12], str(commit.author.name), day)
    return None


def last_change(path: Path, file: str, text: str) -> AddedBy | None:
    """The last commit that added or removed ``text`` in ``file`` (``git log -S``): the
    commit that took a member out of a cohort file, or deleted the file. None when git has
    no such commit."""
    try:
        repo = _repo(path)
        out = repo.git.log("-1", f"-S{text}", "--format=%H%x09%an%x09%cI", "--", file)
    except (GitError, git.GitCommandError, ValueError):
        return None
    if not out.strip():
        return None
    sha, author, date = out.strip().split("\t")
    return AddedBy(sha[:12], author, date[:10])
