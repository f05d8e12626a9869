"""The history branch: append-only month files pushed with fetch and retry, so that jobs of
different platforms pushing at once lose nothing, and a token never shows (issue 16)."""

from __future__ import annotations

import threading
from pathlib import Path

import git
import pytest

from reconciler.errors import GitError
from reconciler.history import gitstore
from reconciler.history.entries import dumps
from reconciler.history.spool import Spool


def entry(n: int, platform: str = "ecampus", time: str = "2026-11-28T02:00:00+00:00") -> dict:
    return {"v": 1, "id": f"{platform}-{n}", "type": "change", "time": time,
            "platform": platform, "kind": "remove_members", "usernames": [f"e{n}"]}


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git.Repo.init(bare, bare=True)
    seed = git.Repo.clone_from(bare, tmp_path / "seed")
    (tmp_path / "seed" / "README").write_text("declarations\n")
    seed.git.add(A=True)
    seed.index.commit("declarations")
    seed.git.push("origin", "HEAD:refs/heads/main")
    return bare


def clone(remote: Path, where: Path) -> Path:
    git.Repo.clone_from(remote, where)
    return where


def branch_files(remote: Path) -> dict[str, list[str]]:
    repo = git.Repo(remote)
    tree = repo.commit(gitstore.BRANCH).tree
    return {
        b.path: b.data_stream.read().decode().splitlines()
        for b in tree.traverse()
        if b.type == "blob"
    }


def test_entries_go_to_month_files_once_and_another_clone_reads_them(
    remote: Path, tmp_path: Path
) -> None:
    a = clone(remote, tmp_path / "a")
    first = [entry(1), entry(2, time="2026-12-01T02:00:00+00:00"), entry(3, "collegium")]
    result = gitstore.push(a, first)
    assert (result.added, result.attempts) == (3, 1)
    assert branch_files(remote) == {
        "history/ecampus/2026-11.jsonl": [dumps(first[0])],
        "history/ecampus/2026-12.jsonl": [dumps(first[1])],
        "history/collegium/2026-11.jsonl": [dumps(first[2])],
    }
    again = gitstore.push(a, [*first, entry(4)])  # a job cut before it emptied its spool
    assert again.added == 1
    assert len(branch_files(remote)["history/ecampus/2026-11.jsonl"]) == 2
    assert gitstore.push(a, first).commit is None  # nothing new: no commit at all

    b = clone(remote, tmp_path / "b")  # a clone sees the branch as origin/reconciler-history
    ids = ["collegium-3", "ecampus-1", "ecampus-4", "ecampus-2"]
    assert [e["id"] for e in gitstore.read_entries(b)] == ids
    gitstore.push(a, [entry(5, time="2026-12-02T02:00:00+00:00")])
    assert len(gitstore.read_entries(b)) == 4  # until it fetches
    assert gitstore.fetch(b) is True
    assert [e["id"] for e in gitstore.read_entries(b)] == [*ids, "ecampus-5"]
    main = git.Repo(remote).commit("main")
    assert [c.hexsha for c in git.Repo(remote).iter_commits("main")] == [main.hexsha]


def test_a_push_refused_because_another_job_pushed_first_is_redone_on_the_new_tip(
    remote: Path, tmp_path: Path
) -> None:
    ecampus, collegium = clone(remote, tmp_path / "e"), clone(remote, tmp_path / "c")
    gitstore.push(ecampus, [entry(1)])
    pauses: list[float] = []

    def meanwhile(attempt: int) -> None:
        if attempt == 1:  # the other platform's nightly job pushes between fetch and push
            gitstore.push(collegium, [entry(7, "collegium")])

    result = gitstore.push(ecampus, [entry(2)], before_push=meanwhile, pause=pauses.append)
    assert result.attempts == 2 and len(pauses) == 1
    files = branch_files(remote)
    assert [e for e in files["history/ecampus/2026-11.jsonl"]] == [
        dumps(entry(1)), dumps(entry(2))]
    assert files["history/collegium/2026-11.jsonl"] == [dumps(entry(7, "collegium"))]


def test_jobs_pushing_at_the_same_time_lose_no_line(remote: Path, tmp_path: Path) -> None:
    clones = {p: clone(remote, tmp_path / p) for p in ("ecampus", "collegium", "prelude")}
    errors: list[BaseException] = []

    def job(platform: str) -> None:
        try:
            for n in range(3):
                gitstore.push(clones[platform], [entry(n, platform)], attempts=20,
                              pause=lambda s: None)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=job, args=(p,)) for p in clones]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    files = branch_files(remote)
    for platform in clones:
        assert files[f"history/{platform}/2026-11.jsonl"] == [
            dumps(entry(n, platform)) for n in range(3)]


def test_the_ci_url_carries_the_token_and_no_message_shows_it(tmp_path: Path) -> None:
    env = {"RECONCILER_HISTORY_TOKEN": "glpat-SECRET42", "CI_SERVER_URL": "https://127.0.0.1:9",
           "CI_PROJECT_PATH": "cemu/cohorts"}
    url = gitstore.remote_url(env)
    assert url == "https://reconciler-history:glpat-SECRET42@127.0.0.1:9/cemu/cohorts.git"
    assert gitstore.remote_url({**env, "RECONCILER_HISTORY_TOKEN": ""}) is None
    repo = tmp_path / "r"
    git.Repo.init(repo)
    with pytest.raises(GitError) as err:
        gitstore.push(repo, [entry(1)], remote=url)
    assert "glpat-SECRET42" not in str(err.value) and "cannot fetch" in str(err.value)


def test_the_spool_drops_only_what_was_pushed(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "history")
    spool.append("ecampus", [entry(1), entry(2)])
    spool.append("collegium", [entry(3, "collegium")])
    (tmp_path / "history" / "ecampus.jsonl").open("a").write('{"cut in the midd\n')
    assert spool.platforms() == ["collegium", "ecampus"]
    assert [e["id"] for e in spool.read()] == ["collegium-3", "ecampus-1", "ecampus-2"]
    assert spool.drop("ecampus", {"ecampus-1"}) == 1
    assert [e["id"] for e in spool.read("ecampus")] == ["ecampus-2"]
    assert spool.drop("ecampus", {"ecampus-2"}) == 0
    assert not spool.path("ecampus").exists()


def test_every_pipeline_job_that_applies_pushes_its_history() -> None:
    import yaml

    ci = yaml.safe_load((Path(__file__).resolve().parent.parent / ".gitlab-ci.yml").read_text())

    def merged(name: str) -> dict:
        out: dict = {}
        for parent in ci[name].get("extends", []):
            out.update(merged(parent))
        out.update(ci[name])
        return out

    applying = [name for name, job in ci.items() if isinstance(job, dict) and any(
        "reconcile apply" in line or "reconcile ci apply" in line
        for line in merged(name).get("script") or [])]
    assert applying
    for name in applying:
        job = merged(name)
        assert any("reconcile history-push" in line for line in job.get("after_script", [])), name
        assert ".reconciler/history/" in job["artifacts"]["paths"], name
    assert "RECONCILER_HISTORY_TOKEN:" not in (
        Path(__file__).resolve().parent.parent / ".gitlab-ci.yml").read_text()
