"""Shared fixtures. Keep minimal: fixtures only."""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import fake_gitlab, realmoodle
from support.backends import KINDS, Backend, clean_site_backend, emulator_backend
from support.slapd import Slapd, slapd_available, start_slapd
from support.world import TEST_FAILSAFES, World, make_repo, open_world, shipped_seed

from reconciler.demo import data as demo_data
from reconciler.settings import Settings, settings_from_document

REPO = Path(__file__).resolve().parent.parent

# Directory and APOGÉE of the source tests: more entries than the slapd size limit below.
SOURCES_SEED = 7
SOURCES_STUDENTS = 300
SLAPD_SIZE_LIMIT = 100


@pytest.fixture(scope="session")
def sources_data() -> demo_data.DemoData:
    """The fictional university of the source tests (do not mutate: copy first)."""
    return demo_data.generate(seed=SOURCES_SEED, students=SOURCES_STUDENTS)


@pytest.fixture(scope="session")
def slapd(tmp_path_factory: pytest.TempPathFactory,
          sources_data: demo_data.DemoData) -> Iterator[Slapd]:
    """A real OpenLDAP slapd on 127.0.0.1 seeded with ``sources_data`` plus odd entries."""
    if not slapd_available():
        pytest.skip("/usr/sbin/slapd is not installed (apt-get install slapd ldap-utils)")
    entries = [*sources_data.entries, *demo_data.anomaly_entries(sources_data)]
    ldif = demo_data.directory_ldif(entries)
    server = start_slapd(tmp_path_factory.mktemp("slapd"), ldif, size_limit=SLAPD_SIZE_LIMIT)
    yield server
    server.stop()


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


@pytest.fixture
def make_settings(tmp_path: Path) -> Callable[..., Settings]:
    """Settings from the shipped platforms.yaml, with overrides; the state file under tmp_path."""
    shipped = yaml.safe_load((REPO / "cohorts" / "platforms.yaml").read_text(encoding="utf-8"))

    def make(overrides: dict[str, Any] | None = None, root: Path | None = None) -> Settings:
        doc = _merge(copy.deepcopy(shipped), {"sources": {"ldap": {"page_size": 40}}})
        return settings_from_document(_merge(doc, overrides or {}), root=root or tmp_path)

    return make


@pytest.fixture
def world(tmp_path: Path, slapd: Slapd, sources_data: demo_data.DemoData) -> Iterator[World]:
    """The shipped declarations (small-cohort failsafes tightened so that the test cohorts
    are capped, and no grace period: a leaver goes on the run that sees them gone, as the
    failsafe tests need), APOGÉE from ``sources_data``, the ``slapd`` directory, a seeded
    emulator. ``grace_world`` (test_general_windows.py) keeps the shipped grace."""
    with _shipped_world(tmp_path, slapd, sources_data) as world:
        yield world


@pytest.fixture
def emu_world(tmp_path: Path, slapd: Slapd, sources_data: demo_data.DemoData) -> Iterator[World]:
    """``world`` on the emulator alone, for modules whose ``world`` runs on each backend:
    the scenarios that need what only the emulator has (injected faults, call counters)."""
    with _shipped_world(tmp_path, slapd, sources_data) as world:
        yield world


@pytest.fixture
def backends_world(tmp_path: Path, slapd: Slapd, sources_data: demo_data.DemoData,
                   backend: Backend) -> Iterator[World]:
    """The shipped university on each Moodle backend in turn (the emulator, the real 4.5
    site: skipped without one, required in CI), seeded through the web services on both."""
    with _shipped_world(tmp_path, slapd, sources_data, backend) as world:
        yield world


@contextmanager
def _shipped_world(tmp_path: Path, slapd: Slapd, sources_data: demo_data.DemoData,
                   backend: Backend | None = None) -> Iterator[World]:
    with open_world(tmp_path, make_repo(tmp_path, TEST_FAILSAFES), sources_data,
                    slapd.environ(), shipped_seed(sources_data), backend=backend) as world:
        yield world


@pytest.fixture(scope="session")
def real_moodle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[realmoodle.RealMoodle]:
    """The real Moodle 4.5 site (tests/support/realmoodle.py says where it comes from).

    Reuses a running site named by MOODLE_URL/MOODLE_TOKEN, else starts one from
    REALMOODLE_BUNDLE for the session, else skips, or fails when REALMOODLE_REQUIRED=1 (CI).
    """
    site = realmoodle.site_from_env(os.environ)
    started = False
    if site is None and os.environ.get("REALMOODLE_BUNDLE"):
        bundle = Path(os.environ["REALMOODLE_BUNDLE"])
        try:
            site = realmoodle.start_site(bundle, tmp_path_factory.mktemp("realmoodle"))
        except realmoodle.SiteUnavailable as exc:
            pytest.fail(f"the real Moodle could not start: {exc}")
        started = True
    if site is None:
        if realmoodle.required():
            pytest.fail(realmoodle.NOT_AVAILABLE)
        pytest.skip(realmoodle.NOT_AVAILABLE)
    yield site
    if started:
        realmoodle.stop_site(site, purge=True)


@pytest.fixture(scope="module")
def pristine_moodle(real_moodle: realmoodle.RealMoodle) -> realmoodle.RealMoodle:
    """The real site reset to its pristine state once for the module (reset.sh, ~4 s)."""
    try:
        real_moodle.reset()
    except realmoodle.SiteUnavailable as exc:
        if realmoodle.required():
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    return real_moodle


@pytest.fixture(params=[pytest.param(kind, marks=getattr(pytest.mark, kind)) for kind in KINDS])
def backend(request: pytest.FixtureRequest) -> Iterator[Backend]:
    """Each Moodle backend in turn, clean: a fresh emulator, or the real site (reset once per
    module, then every course and cohort deleted before each test, about 1 s)."""
    if request.param == "real":
        yield clean_site_backend(request.getfixturevalue("pristine_moodle"))
        return
    with emulator_backend() as fresh:
        yield fresh


@pytest.fixture
def gitlab() -> Iterator[fake_gitlab.FakeGitLab]:
    """A fake GitLab (merge-request notes API) on 127.0.0.1 for one test."""
    server = fake_gitlab.start()
    yield server
    fake_gitlab.stop(server)
