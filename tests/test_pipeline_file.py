"""`.gitlab-ci.yml` itself, run by gitlab-ci-local (shell executor) on a clone of this
repository: three `reconcile emulator serve` as the platforms, APOGÉE in SQLite, a real slapd,
and the fake GitLab as the merge request's notes API (issue 13).

gitlab-ci-local is installed by `.ci/run` (`.ci/tools`, pinned); without it these tests skip
on a developer's machine and fail in CI. Its quirks, worked around here: in shell mode it
sets CI_PROJECT_DIR to a Docker path (overridden with the clone's path), and it runs a job
that needs a job allowed to fail (`allow_failure: exit_codes`) even when that job failed
with another code, where GitLab would skip it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from click.testing import CliRunner
from support import fake_gitlab

from reconciler.cli import main
from reconciler.demo import data as demo_data
from reconciler.gitlab.notes import marker

REPO = Path(__file__).resolve().parent.parent
TOOLS = REPO / ".ci" / "tools"
PLATFORMS = ("ecampus", "collegium", "prelude")
TOKEN = "pipeline-token"
# What a job needs of the repository (`pip install -e .` reads pyproject.toml and README.md).
SHIPPED = (".gitlab-ci.yml", "pyproject.toml", "README.md", "reconciler", "schemas", "cohorts",
           "CODEOWNERS")
pytestmark = pytest.mark.pipeline
RESULT = re.compile(r"^\s*(PASS|WARN|FAIL)\s+(\S.*?)\s*(?:pre_script)?$")
EXIT = re.compile(r"^(\S.*?)\s+finished in .*?\s(FAIL|WARN)\s+(\d+)")


def _gitlab_ci_local() -> str | None:
    pinned = TOOLS / "node_modules" / ".bin" / "gitlab-ci-local"
    for candidate in (os.environ.get("GITLAB_CI_LOCAL"), str(pinned)):
        if candidate and Path(candidate).exists():
            return candidate
    return shutil.which("gitlab-ci-local")


@pytest.fixture(scope="module")
def gitlab_ci_local() -> str:
    found = _gitlab_ci_local()
    missing = [] if found else ["gitlab-ci-local (cd .ci/tools && npm ci)"]
    missing += [] if shutil.which("rsync") else ["rsync (apt-get install rsync)"]
    if missing:
        message = f"pipeline tests need {' and '.join(missing)}; .ci/run installs them"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    assert found is not None
    return found


@pytest.fixture(scope="session")
def job_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `python` the jobs run (`python -m pip install -e .` in before_script): a venv that
    sees this venv's packages through a .pth file, so the install needs no download and never
    repoints this venv's own editable install at a clone."""
    venv = tmp_path_factory.mktemp("job-python") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    Path(site, "_reconciler_test_packages.pth").write_text(
        sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8"
    )
    # setuptools and wheel in the venv itself, for an install without build isolation.
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "setuptools>=68", "wheel"],
        check=True,
        capture_output=True,
    )
    # GitLab gives each job its own container; here parallel jobs share this venv, so their
    # `python -m pip install -e .` take turns (flock) instead of racing on the same files.
    wrappers = venv.parent / "bin"
    wrappers.mkdir()
    wrapper = wrappers / "python"
    wrapper.write_text(
        f'#!/bin/sh\nexec flock "{venv.parent / "pip.lock"}" "{python}" "$@"\n', encoding="utf-8"
    )
    wrapper.chmod(0o755)
    return wrappers


@pytest.fixture(scope="module")
def apogee(tmp_path_factory: pytest.TempPathFactory, sources_data: demo_data.DemoData) -> Path:
    path = tmp_path_factory.mktemp("apogee") / "apogee.db"
    demo_data.write_apogee(sources_data, path).close()
    return path


def _seeds(data: demo_data.DemoData) -> dict[str, dict[str, Any]]:
    """Each platform's site: the courses the shipped declarations sync and their people."""
    students = [
        {"username": s.login, "firstname": s.first, "lastname": s.last}
        for s in data.students
        if s.branch == demo_data.PEOPLE
    ]

    def people(names: list[str]) -> list[dict[str, str]]:
        return [{"username": n, "firstname": n, "lastname": "X"} for n in names]

    def site(courses: list[str], users: list[dict[str, str]]) -> dict[str, Any]:
        return {
            "courses": [{"shortname": c, "fullname": c.title()} for c in courses],
            "users": users,
        }

    manual = ["e22401187", "e22403350", "e22409001", "e22409002", "e22409003"]
    tutors = ["e20170412", "e20171588", "e20172203", "e20180077"]
    prepa = ["fc-amartin", "fc-bnguyen", "fc-crobert", "fc-dlefort", "fc-emoreau"]
    return {
        "ecampus": site(["HIST-L1-MOD"], students + people(manual)),
        "collegium": site(["FOAD2-PHARMA"], students + people(tutors)),
        "prelude": site(["PRELUDE-METHODO", "PRELUDE-ANGLAIS"], people(prepa)),
    }


@dataclass
class Run:
    """One pipeline: gitlab-ci-local's exit code, each job's verdict, exit code and log."""

    code: int
    output: str
    verdicts: dict[str, str] = field(default_factory=dict)
    exit_codes: dict[str, int] = field(default_factory=dict)

    def log(self, job: str) -> str:
        prefix = re.compile(rf"^{re.escape(job)}\s+[>$] ?(.*)$")
        return "\n".join(
            m.group(1) for line in self.output.splitlines() if (m := prefix.match(line))
        )


@dataclass
class Pipelines:
    """A clone of this repository pushed to a bare origin, and the world its jobs reach."""

    binary: str
    bin_dir: Path
    work: Path
    repo: git.Repo
    urls: dict[str, str]
    sources: dict[str, str]
    gitlab: fake_gitlab.FakeGitLab

    def run(self, source: str, variables: dict[str, str]) -> Run:
        args = [self.binary, "--force-shell-executor", "--no-color"]
        overridden = {"CI_PIPELINE_SOURCE": source, "CI_PROJECT_DIR": str(self.work)}
        everything = {
            **overridden,
            **{f"{p.upper()}_URL": url for p, url in self.urls.items()},
            **self.sources,
            # pip reads this variable inverted: "0" turns build isolation off (no download).
            "PIP_NO_BUILD_ISOLATION": "0",
            **variables,
        }
        for name, value in everything.items():
            args += ["--variable", f"{name}={value}"]
        predefined = [n for n in everything if n.startswith("CI_")]
        args += ["--ignore-predefined-vars", ",".join(predefined)]
        path = [str(self.bin_dir), str(self.bin_dir.parent / "venv" / "bin"), os.environ["PATH"]]
        env = {**os.environ, "PATH": os.pathsep.join(path)}
        env.pop("VIRTUAL_ENV", None)
        done = subprocess.run(
            args, cwd=self.work, env=env, capture_output=True, text=True, timeout=600
        )
        run = Run(done.returncode, done.stdout + done.stderr)
        for line in run.output.splitlines():
            if m := RESULT.match(line):
                run.verdicts[m.group(2)] = m.group(1)
            if m := EXIT.match(line):
                run.exit_codes[m.group(1)] = int(m.group(3))
        return run

    def merge_request(self, **extra: str) -> Run:
        """A merge-request pipeline of the branch checked out (read-only tokens only: the
        write tokens are protected variables that such pipelines do not get)."""
        variables = {
            "CI_MERGE_REQUEST_IID": fake_gitlab.MERGE_REQUEST,
            "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_EVENT_TYPE": "detached",
            "CI_API_V4_URL": self.gitlab.api,
            "CI_PROJECT_ID": fake_gitlab.PROJECT,
            "GITLAB_NOTE_TOKEN": fake_gitlab.TOKEN,
            **{f"{p.upper()}_READONLY_TOKEN": TOKEN for p in PLATFORMS},
            **extra,
        }
        return self.run("merge_request_event", variables)

    def scheduled(self, source: str = "schedule", **extra: str) -> Run:
        return self.run(source, {**{f"{p.upper()}_TOKEN": TOKEN for p in PLATFORMS}, **extra})

    def apply_main(self) -> None:
        """What last night's run left in Moodle (applied here directly, to save a pipeline)."""
        env = {
            **{f"{p.upper()}_URL": url for p, url in self.urls.items()},
            **{f"{p.upper()}_TOKEN": TOKEN for p in PLATFORMS},
            **self.sources,
        }
        for platform in PLATFORMS:
            result = CliRunner().invoke(
                main, ["--repo", str(self.work), "apply", "-p", platform], env=env
            )
            assert result.exit_code == 0, result.output

    def plan(self, platform: str) -> dict[str, Any]:
        """The platform's plan now (in-process), as JSON."""
        env = {
            **{f"{p.upper()}_URL": url for p, url in self.urls.items()},
            **{f"{p.upper()}_TOKEN": TOKEN for p in PLATFORMS},
            **self.sources,
        }
        result = CliRunner().invoke(
            main, ["--repo", str(self.work), "plan", "-p", platform, "--format", "json"], env=env
        )
        assert result.exit_code in (0, 2, 3), result.output
        return json.loads(result.stdout)

    def edit(self, relative: str, change: Any) -> None:
        path = self.work / relative
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        change(doc)
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), "utf-8")

    def commit(self, message: str) -> str:
        self.repo.git.add(A=True)
        self.repo.index.commit(message)
        return self.repo.head.commit.hexsha

    def notes(self, platform: str) -> list[dict[str, Any]]:
        return [n for n in self.gitlab.notes if marker(platform) in n["body"]]


def _clone(root: Path) -> git.Repo:
    work = root / "work"
    work.mkdir()
    for name in SHIPPED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, work / name)
    doc = yaml.safe_load((work / "cohorts" / "platforms.yaml").read_text(encoding="utf-8"))
    doc["sources"]["ldap"]["page_size"] = 40
    # Small test cohorts: make the per-cohort removal cap apply to them.
    doc["platforms"]["prelude"]["failsafes"] = {
        "small_cohort_size": 2,
        "per_cohort_removal_floor": 1,
    }
    (work / "cohorts" / "platforms.yaml").write_text(
        yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
    )
    (work / ".gitignore").write_text(
        ".gitlab-ci-local/\n.reconciler/\n.cache/\nplans/\n*.egg-info/\n__pycache__/\n"
        "gl-code-quality-report.json\nvalidate-junit.xml\nexpiring.*\n"
    )
    repo = git.Repo.init(work, initial_branch="main")
    with repo.config_writer() as cw:
        cw.set_value("user", "name", "Claire Lefèvre")
        cw.set_value("user", "email", "claire@example.org")
    repo.git.add(A=True)
    repo.index.commit("the declarations")
    git.Repo.init(root / "origin.git", bare=True, initial_branch="main")
    repo.create_remote("origin", str(root / "origin.git"))
    repo.git.push("-q", "origin", "main")
    repo.git.remote("set-head", "origin", "main")
    return repo


@pytest.fixture
def pipelines(
    tmp_path: Path,
    gitlab_ci_local: str,
    job_python: Path,
    apogee: Path,
    slapd: Any,
    sources_data: demo_data.DemoData,
    gitlab: fake_gitlab.FakeGitLab,
) -> Iterator[Pipelines]:
    repo = _clone(tmp_path)
    servers: list[subprocess.Popen[str]] = []
    urls: dict[str, str] = {}
    try:
        for platform, seed in _seeds(sources_data).items():
            seed_file = tmp_path / f"{platform}-seed.json"
            seed_file.write_text(json.dumps(seed), encoding="utf-8")
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "reconciler.cli",
                    "emulator",
                    "serve",
                    "--token",
                    TOKEN,
                    "--seed",
                    str(seed_file),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            servers.append(server)
            assert server.stdout is not None
            urls[platform] = server.stdout.readline().strip()
        sources = {"APOGEE_URL": f"sqlite:///{apogee}", **slapd.environ()}
        yield Pipelines(
            gitlab_ci_local, job_python, Path(repo.working_dir), repo, urls, sources, gitlab
        )
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)


def test_the_nightly_applies_every_platform(pipelines: Pipelines) -> None:
    run = pipelines.scheduled()
    jobs = {f"{job}: [{p}]" for p in PLATFORMS for job in ("nightly", "audit")} | {"expiring"}
    assert {j: run.verdicts.get(j) for j in jobs} == dict.fromkeys(jobs, "PASS"), run.output
    assert set(run.verdicts) == jobs  # no validate, no plan: the schedule applies and reports
    for platform in PLATFORMS:
        log = run.log(f"nightly: [{platform}]")
        assert "Applied " in log and " 0 failed, 0 skipped." in log, log
        assert re.search(r"\[1/\d+\] create_\w+ \S+: ok", log), log  # one line an action
    journal = (pipelines.work / ".reconciler" / "journal.jsonl").read_text().splitlines()
    assert {json.loads(line)["platform"] for line in journal} == set(PLATFORMS)
    for platform in PLATFORMS:
        assert pipelines.plan(platform)["actions"] == [], platform  # converged


def test_a_clean_merge_request_has_one_note_updated_in_place(pipelines: Pipelines) -> None:
    pipelines.apply_main()
    pipelines.repo.git.checkout("-q", "-b", "tutors")
    tutors = "cohorts/collegium/cohorts/man-tuteurs-l2-pharma.yaml"
    pipelines.edit(tutors, lambda doc: doc["members"].remove("e20180077"))
    first = pipelines.commit("one tutor less")
    run = pipelines.merge_request()
    jobs = {"validate"} | {f"plan:merge-request: [{p}]" for p in PLATFORMS}
    assert {j: run.verdicts.get(j) for j in jobs} == dict.fromkeys(jobs, "PASS"), run.output
    notes = {p: pipelines.notes(p) for p in PLATFORMS}
    assert all(len(n) == 1 for n in notes.values()), notes
    [note] = notes["collegium"]
    assert f"Plan of `{first[:12]}`" in note["body"]
    assert "this merge request: 0 to add, 0 to change, 1 to remove" in note["body"]
    saved = json.loads((pipelines.work / "plans" / "collegium.json").read_text())
    assert f"`{saved['digest']}`" in note["body"]
    assert "this merge request: no change in Moodle" in pipelines.notes("prelude")[0]["body"]

    pipelines.edit(tutors, lambda doc: doc["members"].append("e20180077"))
    second = pipelines.commit("the tutor stays after all")
    run = pipelines.merge_request()
    assert {j: run.verdicts.get(j) for j in jobs} == dict.fromkeys(jobs, "PASS"), run.output
    [again] = pipelines.notes("collegium")
    assert again["id"] == note["id"] and f"Plan of `{second[:12]}`" in again["body"]
    assert "this merge request: no change in Moodle" in again["body"]
    posts = [r for r in pipelines.gitlab.requests if r[0] == "POST"]
    assert len(posts) == len(PLATFORMS)  # one note a platform, ever; then PUT in place


def test_a_broken_plan_fails_and_a_tripped_failsafe_is_an_allowed_failure(
    pipelines: Pipelines,
) -> None:
    pipelines.apply_main()
    pipelines.gitlab.notes.append({"id": 77, "body": f"{marker('ecampus')}\nlast push's plan"})
    pipelines.repo.git.checkout("-q", "-b", "spring")
    hist = "cohorts/ecampus/syncs/HIST-L1-MOD.yaml"
    pipelines.edit(hist, lambda doc: doc.update(course="HIST-L1-MODD"))
    (pipelines.work / hist).rename(pipelines.work / "cohorts/ecampus/syncs/HIST-L1-MODD.yaml")
    prepa = "cohorts/prelude/cohorts/man-prepa-ifsi.yaml"
    pipelines.edit(prepa, lambda doc: doc.update(members=doc["members"][:1]))
    # A renamed file changes CODEOWNERS, which validate checks: regenerated, as its owner would.
    owners = CliRunner().invoke(main, ["--repo", str(pipelines.work), "codeowners"])
    assert owners.exit_code == 0, owners.output
    sha = pipelines.commit("spring cleaning")
    run = pipelines.merge_request()
    assert run.verdicts["validate"] == "PASS", run.output
    assert run.verdicts["plan:merge-request: [ecampus]"] == "FAIL", run.output
    assert run.exit_codes["plan:merge-request: [ecampus]"] == 1
    assert run.verdicts["plan:merge-request: [prelude]"] == "WARN", run.output
    assert run.exit_codes["plan:merge-request: [prelude]"] == 3
    assert run.verdicts["plan:merge-request: [collegium]"] == "PASS"
    [broken] = pipelines.notes("ecampus")
    assert broken["id"] == 77 and "last push's plan" not in broken["body"]
    assert broken["body"].splitlines()[1] == (
        f"### ❌ `ecampus`: plan failed at {sha[:8]}: cohorts/ecampus/syncs/HIST-L1-MODD.yaml:"
        "5: course 'HIST-L1-MODD' does not exist in Moodle (ecampus) (did you mean "
        "HIST-L1-MOD?)"
    )
    [tripped] = pipelines.notes("prelude")
    assert "- **Failsafes**: 🛑 tripped" in tripped["body"]
    assert "remove 2 of 3 members" in tripped["body"]
    log = run.log("plan:merge-request: [prelude]")
    assert "RECONCILER_APPROVED_DIGEST=sha256:" in log


def test_a_pipeline_run_by_hand_lets_the_approved_plan_through(pipelines: Pipelines) -> None:
    pipelines.apply_main()
    prepa = "cohorts/prelude/cohorts/man-prepa-ifsi.yaml"
    pipelines.edit(prepa, lambda doc: doc.update(members=doc["members"][:1]))
    pipelines.commit("the preparation ends")
    pipelines.repo.git.push("-q", "origin", "main")
    digest = pipelines.plan("prelude")["digest"]  # what the night's failed job printed
    run = pipelines.scheduled("web", RECONCILER_APPROVED_DIGEST=digest)
    jobs = {"validate"} | {f"nightly: [{p}]" for p in PLATFORMS}
    assert {j: run.verdicts.get(j) for j in jobs} == dict.fromkeys(jobs, "PASS"), run.output
    log = run.log("nightly: [prelude]")
    assert "approved by RECONCILER_APPROVED_DIGEST for this run" in log
    assert "[1/2] remove_members man-prepa-ifsi: ok" in log, log
    assert pipelines.plan("prelude")["actions"] == []
