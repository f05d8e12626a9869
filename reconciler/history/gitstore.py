"""The durable home of the history: a dedicated branch of the declarations' own repository.

``reconciler-history`` holds only ``history/<platform>/<YYYY-MM>.jsonl``, append-only JSON
lines (``entries``). A university already keeps, backs up and controls access to this
repository, so the history lives as long as the declarations do and needs no new service;
losing the CI cache loses at most what was not pushed yet (``spool``).

Writing never checks the branch out: each push fetches the branch tip, appends the new lines
(those whose id the tip lacks) to the month files in an in-memory index, commits on top of
the tip and pushes that commit, without force. When another job pushed in between (two
platforms' nightly jobs at once), the push is refused as not a fast-forward and the whole
step runs again on the new tip, a few times with a pause. Appending to different files
never conflicts, and re-appending on a new tip is always correct, so no rebase can fail.

Git runs through gitpython. The remote is a name (``origin``) or a URL; a URL carrying a
token (the CI's ``RECONCILER_HISTORY_TOKEN``) is redacted from every message.
"""

from __future__ import annotations

import io
import random
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import git
from git.index.typ import BaseIndexEntry
from gitdb import IStream

from ..errors import GitError
from .entries import dumps, loads, order

BRANCH = "reconciler-history"
FOLDER = "history"
# Where a push keeps the tip it fetched (never a branch someone works on).
TIP_REF = "refs/reconciler/history-tip"
# Local places a help desk or CI may hold the branch, read together.
READ_REFS = (TIP_REF, f"refs/heads/{BRANCH}", f"refs/remotes/origin/{BRANCH}")
BOT = git.Actor("Moodle cohort reconciler", "cohort-reconciler@localhost")
TOKEN_USER = "reconciler-history"


def month_file(platform: str, time_text: str) -> str:
    """``history/<platform>/<YYYY-MM>.jsonl`` for an entry's ISO time (UTC)."""
    return f"{FOLDER}/{platform}/{time_text[:7]}.jsonl"


def remote_url(environ: Mapping[str, str]) -> str | None:
    """The push URL of the CI job: ``CI_SERVER_URL`` and ``CI_PROJECT_PATH`` with the
    project access token ``RECONCILER_HISTORY_TOKEN`` (None when any is missing)."""
    token = environ.get("RECONCILER_HISTORY_TOKEN", "").strip()
    server = environ.get("CI_SERVER_URL", "").strip()
    project = environ.get("CI_PROJECT_PATH", "").strip()
    if not (token and server and project):
        return None
    parts = urlsplit(server)
    netloc = f"{TOKEN_USER}:{quote(token, safe='')}@{parts.netloc}"
    return urlunsplit((parts.scheme, netloc, f"{parts.path.rstrip('/')}/{project}.git", "", ""))


def redact(text: str) -> str:
    """``text`` without the password of any URL in it (``https://user:***@host``)."""
    return re.sub(r"(://[^/\s:@]+:)[^@\s]+@", r"\1***@", text)


def _repo(path: Path) -> git.Repo:
    try:
        return git.Repo(path, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise GitError(f"{path} is not in a git repository") from None


def _git_error(what: str, exc: git.GitCommandError) -> GitError:
    detail = " ".join(str(exc.stderr or exc).split())
    return GitError(redact(f"{what}: {detail}"))


def read_entries(path: Path) -> list[dict[str, Any]]:
    """Every entry the local clone holds for the history branch (its local branch, the
    remote-tracking one, the tip the last push fetched), each once, in time order. Nothing
    when none of them exists."""
    repo = _repo(path)
    seen: dict[str, dict[str, Any]] = {}
    for ref in READ_REFS:
        try:
            commit = repo.commit(ref)
        except (git.BadName, ValueError):
            continue
        for entry in _tree_entries(commit):
            seen.setdefault(entry["id"], entry)
    return sorted(seen.values(), key=order)


def _tree_entries(commit: git.Commit) -> list[dict[str, Any]]:
    try:
        folder = commit.tree / FOLDER
    except KeyError:
        return []
    out: list[dict[str, Any]] = []
    for item in folder.traverse():
        if item.type == "blob" and item.path.endswith(".jsonl"):
            out += loads(item.data_stream.read().decode("utf-8", "replace").splitlines())
    return out


def fetch(path: Path, remote: str = "origin") -> bool:
    """Fetch the history branch into the local tip ref. False when the remote has no such
    branch yet; raises GitError for any other failure (network, access)."""
    repo = _repo(path)
    try:
        repo.git.fetch(remote, f"+refs/heads/{BRANCH}:{TIP_REF}")
    except git.GitCommandError as exc:
        if "couldn't find remote ref" in str(exc.stderr or "").lower():
            return False
        raise _git_error(f"cannot fetch {BRANCH}", exc) from None
    return True


@dataclass(frozen=True)
class PushResult:
    """``added``: entries new to the branch; ``commit``: the commit pushed (None when the
    branch already had everything); ``attempts``: pushes tried (more than one when another
    job pushed in between)."""

    added: int
    commit: str | None
    attempts: int


def push(
    path: Path,
    entries: Iterable[Mapping[str, Any]],
    *,
    remote: str = "origin",
    attempts: int = 5,
    pause: Callable[[float], None] = time.sleep,
    before_push: Callable[[int], None] | None = None,
) -> PushResult:
    """Append ``entries`` to the history branch of ``remote`` (a name or URL) and push.

    Fetch the tip, append to each month file the entries it lacks (by id), commit on the
    tip, push without force; when refused because the branch moved, do it all again on the
    new tip (at most ``attempts`` times, pausing a second or two in between). ``before_push``
    (tests) runs before each push with the attempt number. Raises GitError when fetching or
    pushing fails for another reason, or when the branch kept moving.
    """
    repo = _repo(path)
    pending = list(entries)
    for attempt in range(1, attempts + 1):
        tip = repo.commit(TIP_REF) if fetch(path, remote) else None
        files = _appended(tip, pending)
        if not files:
            return PushResult(0, None, attempt)
        added = sum(count for _, count in files.values())
        commit = _commit(repo, tip, {name: data for name, (data, _) in files.items()}, added)
        if before_push is not None:
            before_push(attempt)
        try:
            repo.git.push(remote, f"{commit.hexsha}:refs/heads/{BRANCH}")
        except git.GitCommandError as exc:
            text = str(exc.stderr or "")
            if "rejected" in text or "fetch first" in text or "non-fast-forward" in text:
                pause(1 + random.random())
                continue
            raise _git_error(f"cannot push {BRANCH}", exc) from None
        repo.git.update_ref(TIP_REF, commit.hexsha)
        return PushResult(added, commit.hexsha, attempt)
    raise GitError(f"cannot push {BRANCH}: the branch moved under {attempts} attempts in a row")


def _appended(
    tip: git.Commit | None, entries: list[Mapping[str, Any]]
) -> dict[str, tuple[bytes, int]]:
    """``{month file: (its new content, lines added)}`` for the files that gain lines."""
    by_file: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for entry in entries:
        by_file[month_file(str(entry["platform"]), str(entry["time"]))].append(entry)
    out: dict[str, tuple[bytes, int]] = {}
    for name, items in sorted(by_file.items()):
        old = b""
        if tip is not None:
            try:
                old = (tip.tree / name).data_stream.read()
            except KeyError:
                old = b""
        known = {e["id"] for e in loads(old.decode("utf-8", "replace").splitlines())}
        new = [e for e in items if e["id"] not in known]
        known_now: set[str] = set()
        lines = []
        for e in new:
            if e["id"] not in known_now:
                known_now.add(e["id"])
                lines.append(dumps(e) + "\n")
        if lines:
            head = old if not old or old.endswith(b"\n") else old + b"\n"
            out[name] = (head + "".join(lines).encode("utf-8"), len(lines))
    return out


def _commit(repo: git.Repo, tip: git.Commit | None, files: Mapping[str, bytes],
            added: int) -> git.Commit:
    index = git.IndexFile.new(repo, tip.tree) if tip is not None else git.IndexFile.new(repo)
    blobs = []
    for name, data in files.items():
        stored = repo.odb.store(IStream(git.Blob.type, len(data), io.BytesIO(data)))
        blobs.append(BaseIndexEntry((0o100644, stored.binsha, 0, name)))
    index.add(blobs, write=False)
    platforms = sorted({name.split("/")[1] for name in files})
    message = f"history: {added} entr{'y' if added == 1 else 'ies'} ({', '.join(platforms)})"
    return git.Commit.create_from_tree(
        repo, index.write_tree(), message, parent_commits=[tip] if tip else [], head=False,
        author=BOT, committer=BOT,
    )
