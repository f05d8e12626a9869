"""The GitLab workflow: the merge-request note, expiry notices, validate --changed-since and
the pipeline file itself."""

from __future__ import annotations

import json
import socketserver
import threading
from pathlib import Path

import git
import pytest
import yaml
from click.testing import CliRunner
from support.fake_gitlab import FakeGitLab

from reconciler.cli import main
from reconciler.gitlab.notes import GitLabError, MergeRequest, NotePoster, marker
from reconciler.planning.actions import KINDS, Action, AddMembers, Details, Reason
from reconciler.planning.plan import Plan

REPO = Path(__file__).resolve().parent.parent


def act(target: str, details: Details) -> Action:
    """An action with the first reason its kind allows (the applier never reads it)."""
    return Action.of(target, details, Reason(KINDS[details.KIND].reasons[0], "test"))


def _poster(gitlab: FakeGitLab, token: str = "note-token") -> NotePoster:
    return NotePoster(MergeRequest(gitlab.api, "group/cohorts", "7", token))


def test_note_is_created_then_updated_in_place(gitlab: FakeGitLab) -> None:
    poster = _poster(gitlab)
    action, note = poster.upsert("ecampus", "### plan one")
    assert action == "created" and note["body"] == f"{marker('ecampus')}\n### plan one"
    other, _ = poster.upsert("collegium", "### collegium plan")
    assert other == "created"
    action, again = poster.upsert("ecampus", "### plan two")
    assert action == "updated" and again["id"] == note["id"]
    assert [n["body"].splitlines()[-1] for n in gitlab.notes[4:]] == [
        "### plan two",
        "### collegium plan",
    ]
    methods = [(m, p.split("?")[0]) for m, p, _, _ in gitlab.requests]
    base = "/api/v4/projects/group%2Fcohorts/merge_requests/7/notes"
    assert ("PUT", f"{base}/{note['id']}") in methods
    assert sum(m == "POST" for m, _ in methods) == 2  # never a second note for ecampus
    assert all(h.get("PRIVATE-TOKEN") == "note-token" for _, _, h, _ in gitlab.requests)
    assert any("&page=3" in p for _, p, _, _ in gitlab.requests)  # followed the pagination


def test_too_long_plan_is_cut_with_a_pointer(gitlab: FakeGitLab) -> None:
    body = "<details><summary>Details</summary>\n" + "\n".join(f"- line {i}" for i in range(5000))
    _, note = _poster(gitlab).upsert(
        "ecampus", body, "https://ci/job/1/artifacts/browse", limit=2000
    )
    assert len(note["body"]) <= 2000
    assert (
        note["body"]
        .rstrip()
        .endswith("see [the plan artifact](https://ci/job/1/artifacts/browse).")
    )
    assert note["body"].count("<details>") == note["body"].count("</details>")


@pytest.mark.parametrize(("status", "words"), [(401, "invalid or expired"), (403, "lacks rights")])
def test_token_problems_are_explained(gitlab: FakeGitLab, status: int, words: str) -> None:
    gitlab.status = status
    with pytest.raises(GitLabError, match=words) as err:
        _poster(gitlab).upsert("ecampus", "x")
    assert "note-token" not in str(err.value)


def _saved_plan(tmp_path: Path) -> Path:
    plan = Plan(
        platform="ecampus",
        academic_year="2026",
        actions=[
            act(
                "etp-A-1",
                AddMembers(
                    cohort="etp-A-1",
                    cohortid=3,
                    usernames=("alice",),
                    userids=(7,),
                    size_before=1,
                ),
            )
        ],
    )
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(plan.to_json()), encoding="utf-8")
    return path


def test_mr_note_command_posts_and_dry_runs(gitlab: FakeGitLab, tmp_path: Path) -> None:
    plan = _saved_plan(tmp_path)
    env = {
        "CI_API_V4_URL": gitlab.api,
        "CI_PROJECT_ID": "group/cohorts",
        "CI_MERGE_REQUEST_IID": "7",
        "GITLAB_NOTE_TOKEN": "note-token",
    }
    result = CliRunner().invoke(main, ["mr-note", str(plan)], env=env)
    assert result.exit_code == 0, result.output
    assert "created note" in result.output
    # The same note format as `reconcile ci plan` (gitlab.review.render_note).
    assert "`ecampus`: this plan: 1 to add" in gitlab.notes[-1]["body"]
    assert "- **Digest** of the saved plan: `sha256:" in gitlab.notes[-1]["body"]
    result = CliRunner().invoke(main, ["mr-note", str(plan), "--dry-run"], env={})
    assert result.exit_code == 0 and result.output.startswith(marker("ecampus"))
    result = CliRunner().invoke(main, ["mr-note", str(plan)], env={"GITLAB_NOTE_TOKEN": ""})
    assert result.exit_code == 1 and "--dry-run" in result.output


# -- git: validate --changed-since and expiring ----------------------------------------------


def _git_repo(tmp_path: Path) -> git.Repo:
    repo_dir = tmp_path / "repo"
    import shutil

    shutil.copytree(REPO / "cohorts", repo_dir / "cohorts")
    repo = git.Repo.init(repo_dir)
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Claire Lefèvre")
        cw.set_value("user", "email", "claire@example.org")
    repo.git.add(A=True)
    repo.index.commit("initial declarations")
    return repo


def _validate(repo_dir: Path, *args: str) -> tuple[int, list[dict]]:
    result = CliRunner().invoke(
        main, ["--repo", str(repo_dir), "validate", "--format", "json", *args]
    )
    return result.exit_code, json.loads(result.output) if result.output.startswith("[") else []


def test_changed_since_makes_new_expired_entries_errors_but_not_old_ones(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    base = repo.head.commit.hexsha
    sync_file = Path(repo.working_dir) / "cohorts" / "ecampus" / "syncs" / "HIST-L1-MOD.yaml"
    text = sync_file.read_text(encoding="utf-8")
    sync_file.write_text(
        text + "  - cohort: etp-L1HIS-102\n    role: teacher\n"
        "    expires: 2027-01-10\n    reason: added already expired\n",
        encoding="utf-8",
    )
    today = ["--today", "2027-02-01"]
    code, diags = _validate(Path(repo.working_dir), *today)
    assert code == 0 and {d["rule"] for d in diags} == {"expired"}
    code, diags = _validate(Path(repo.working_dir), *today, "--changed-since", base)
    assert code == 1
    new = [d for d in diags if d["rule"] == "expired-new"]
    assert [(d["file"], d["line"]) for d in new] == [("cohorts/ecampus/syncs/HIST-L1-MOD.yaml", 19)]
    assert all(d["rule"] == "expired" for d in diags if d not in new)  # older ones stay warnings
    code, _ = _validate(Path(repo.working_dir), "--changed-since", "no-such-ref")
    assert code == 1


def test_expiring_lists_owners_and_who_added_it(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    result = CliRunner().invoke(
        main,
        [
            "--repo",
            repo.working_dir,
            "expiring",
            "--within",
            "14d",
            "--today",
            "2027-01-20",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    assert [i["expires"] for i in items] == sorted(i["expires"] for i in items)
    assert (items[0]["platform"], items[0]["days_left"]) == ("prelude", -5)  # already expired
    by_what = {i["what"]: i for i in items}
    late = by_what["HIST-L1-MOD: man-retardataires-l1-histoire as student (cohort)"]
    assert late["days_left"] == 11 and late["owners"] == ["marc.duval@unicaen.fr"]
    assert late["author"] == "Claire Lefèvre" and late["commit"] == repo.head.commit.hexsha[:12]
    assert (
        "HIST-L1-MOD: man-auditeurs-libres-histoire as student (manual)" not in by_what
    )  # 26 days
    md = (
        CliRunner()
        .invoke(
            main,
            [
                "--repo",
                repo.working_dir,
                "expiring",
                "--today",
                "2027-01-20",
                "--format",
                "markdown",
            ],
        )
        .output
    )
    assert "| ecampus | HIST-L1-MOD: man-retardataires-l1-histoire as student (cohort) |" in md


class _SmtpSink(socketserver.ThreadingTCPServer):
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _SmtpHandler)
        self.messages: list[tuple[list[str], str]] = []


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: _SmtpSink

    def handle(self) -> None:
        send = lambda line: self.wfile.write(line.encode() + b"\r\n")  # noqa: E731
        send("220 sink")
        rcpt: list[str] = []
        while line := self.rfile.readline().decode():
            cmd = line.strip().upper()
            if cmd.startswith(("EHLO", "HELO")):
                send("250 sink")
            elif cmd.startswith("RCPT"):
                rcpt.append(line.split("<", 1)[1].split(">", 1)[0])
                send("250 ok")
            elif cmd == "DATA":
                send("354 go")
                body = []
                while (data := self.rfile.readline().decode()) not in (".\r\n", ""):
                    body.append(data)
                self.server.messages.append((rcpt, "".join(body)))
                rcpt = []
                send("250 queued")
            elif cmd == "QUIT":
                send("221 bye")
                return
            else:
                send("250 ok")


def test_expiry_reminders_are_mailed_to_owners(tmp_path: Path) -> None:
    repo = _git_repo(tmp_path)
    sink = _SmtpSink()
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        env = {
            "RECONCILER_SMTP_RELAY": f"127.0.0.1:{sink.server_address[1]}",
            "RECONCILER_MAIL_FROM": "moodle@example.org",
        }
        result = CliRunner().invoke(
            main,
            ["--repo", repo.working_dir, "expiring", "--today", "2027-01-20", "--send-mail"],
            env=env,
        )
        assert result.exit_code == 0, result.output
    finally:
        sink.shutdown()
        sink.server_close()
    rcpts = sorted(r for rs, _ in sink.messages for r in rs)
    assert rcpts == [
        "formation-continue@unicaen.fr",
        "marc.duval@unicaen.fr",
        "scolarite-histoire@unicaen.fr",
    ]
    body = next(b for rs, b in sink.messages if rs == ["marc.duval@unicaen.fr"])
    assert "man-retardataires-l1-histoire" in body


# -- the pipeline file -------------------------------------------------------------------------


def test_gitlab_ci_has_the_workflow() -> None:
    ci = yaml.safe_load((REPO / ".gitlab-ci.yml").read_text(encoding="utf-8"))
    assert ci["stages"] == ["validate", "plan", "apply", "notify"]

    def job(name: str) -> dict:
        merged: dict = {}
        for parent in ci[name].get("extends", []):
            merged.update(job(parent))
        merged.update(ci[name])
        return merged

    def rule_ifs(name: str) -> list[str]:
        return [r["if"] for r in job(name)["rules"]]

    def script(name: str) -> str:
        return "\n".join(job(name)["script"])

    # No shell line decides an exit code: each job is one reconcile command (DESIGN §5.8).
    text = (REPO / ".gitlab-ci.yml").read_text(encoding="utf-8")
    lines = [
        line for spec in ci.values() if isinstance(spec, dict) for line in spec.get("script", [])
    ]
    assert lines and not any(glue in line for line in lines for glue in ("$?", "set +e", "|| true"))

    assert any("merge_request_event" in r for r in rule_ifs("validate"))
    assert any("CI_DEFAULT_BRANCH" in r for r in rule_ifs("validate"))
    assert script("validate") == "reconcile ci validate\nreconcile codeowners --check"
    reports = ci["validate"]["artifacts"]["reports"]
    assert reports == {"codequality": "gl-code-quality-report.json", "junit": "validate-junit.xml"}

    mr = job("plan:merge-request")
    assert rule_ifs("plan:merge-request") == ['$CI_PIPELINE_SOURCE == "merge_request_event"']
    assert mr["interruptible"] is True and ci["validate"]["interruptible"] is True
    assert mr["parallel"]["matrix"] == [{"PLATFORM": ["ecampus", "collegium", "prelude"]}]
    # No token mapping in YAML (a project variable would outrank it): `ci plan` picks the
    # read-only token itself in a merge request (tests/test_ci_jobs.py).
    assert not any("TOKEN" in k for k in (mr.get("variables") or {}))
    assert script("plan:merge-request") == 'reconcile ci plan --platform "$PLATFORM"'
    # Orange, not red: a tripped failsafe, unhealthy sources, an incomplete plan (issue 9).
    assert mr["allow_failure"] == {"exit_codes": [3, 4, 7]}
    assert job("plan:default-branch")["allow_failure"] == {"exit_codes": [3, 4, 7]}
    # The jobs that apply make every one of them visible: none is allowed to fail.
    assert "allow_failure" not in job("nightly") and "allow_failure" not in job("apply:ecampus")
    # expose_as ignores paths with variables: a fixed folder holds <platform>.json and .md.
    assert mr["artifacts"]["paths"] == ["plans/"] and mr["artifacts"]["expose_as"]

    # pip's downloads are cached in every job (PIP_CACHE_DIR), the state per platform too.
    assert ci["variables"]["PIP_CACHE_DIR"] == "$CI_PROJECT_DIR/.cache/pip"
    assert ci["default"]["cache"][0]["paths"] == [".cache/pip/"]
    for name in ("plan:merge-request", "plan:default-branch", "nightly", "apply:ecampus"):
        caches = job(name)["cache"]
        assert [c["paths"] for c in caches] == [[".cache/pip/"], [".reconciler/"]], name
    assert job("plan:merge-request")["cache"][1]["policy"] == "pull"

    for platform in ("ecampus", "collegium", "prelude"):
        apply_job = job(f"apply:{platform}")
        assert all("CI_DEFAULT_BRANCH" in r for r in rule_ifs(f"apply:{platform}"))
        assert any("RECONCILER_AUTO_APPLY" in r for r in rule_ifs(f"apply:{platform}"))
        assert any(r.get("when") == "manual" for r in apply_job["rules"])
        assert apply_job["resource_group"] == "moodle-$PLATFORM"
        assert apply_job["variables"] == {"PLATFORM": platform}
        # Each waits for its own platform's plan only.
        assert apply_job["needs"] == [
            {"job": "plan:default-branch", "parallel": {"matrix": [{"PLATFORM": platform}]}}
        ]
        assert "interruptible" not in apply_job
    assert script("apply:ecampus") == (
        'reconcile ci apply --platform "$PLATFORM" --plan "plans/$PLATFORM.json"'
    )

    nightly = job("nightly")
    assert rule_ifs("nightly") == [
        '$CI_PIPELINE_SOURCE == "schedule"',
        '$CI_PIPELINE_SOURCE == "web" && $CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH',
    ]
    assert nightly["resource_group"] == "moodle-$PLATFORM"
    assert nightly["parallel"]["matrix"][0]["PLATFORM"] == ["ecampus", "collegium", "prelude"]
    assert script("nightly") == 'reconcile ci apply --platform "$PLATFORM"'
    assert ".reconciler/journal.jsonl" in nightly["artifacts"]["paths"]

    assert rule_ifs("expiring") == ['$CI_PIPELINE_SOURCE == "schedule"']
    assert "expiring.md" in ci["expiring"]["artifacts"]["paths"]
    assert "glpat-" not in text and "TOKEN:" not in text.replace("_TOKEN: $", "")
