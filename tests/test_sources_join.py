"""Health judged on the join (issue 9, item 4), through the CLI, on a real slapd.

The directory's student-id attribute renamed (entries present, no ``supannEtuId``), with no
reference counts (a first run, or the CI cache lost): every count looks fine, 0 IAs match an
account. The sources must be unhealthy (exit 4) and Moodle's general cohorts untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.slapd import Slapd, slapd_available, start_slapd
from support.world import World

from reconciler.cli import exitcodes
from reconciler.demo import data as dd

NOW = "2026-11-28T02:00:00Z"
STATE = Path(".reconciler") / "source-health.json"


@pytest.fixture(scope="module")
def renamed_slapd(tmp_path_factory: pytest.TempPathFactory,
                  sources_data: dd.DemoData) -> Iterator[Slapd]:
    """The same directory as ``slapd``, its student numbers moved to employeeNumber."""
    if not slapd_available():
        pytest.skip("/usr/sbin/slapd is not installed (apt-get install slapd ldap-utils)")
    entries = []
    for entry in sources_data.entries:
        attrs = dict(entry["attributes"])
        if "supannEtuId" in attrs:
            attrs["employeeNumber"] = attrs.pop("supannEtuId")
        entries.append({"dn": entry["dn"], "attributes": attrs})
    server = start_slapd(tmp_path_factory.mktemp("renamed-slapd"), dd.directory_ldif(entries),
                         size_limit=100)
    yield server
    server.stop()


def test_a_renamed_student_id_on_a_first_run_exits_4_and_changes_no_general_cohort(
        world: World, renamed_slapd: Slapd) -> None:
    assert world.run("apply", "-p", "ecampus", "--now", NOW)[0] == exitcodes.OK
    before = {k: v for k, v in world.cohorts().items() if k.startswith("etp-")}
    assert before and all(before.values())
    (world.repo / STATE).unlink()  # the CI cache is lost: no reference counts
    renamed = renamed_slapd.environ()

    code, out = world.run("sources", env=renamed)
    assert code == exitcodes.UNHEALTHY, out
    assert "no last good run recorded" in out
    [line] = [x for x in out.splitlines() if x.startswith("  - ecampus: only 0 of ")]
    assert line.endswith("find a directory account by supannEtuId, below min_join_percent 80 "
                         "(is the student-id attribute filled and named right?)")

    code, out = world.run("plan", "-p", "ecampus", "--now", NOW, env=renamed)
    assert code == exitcodes.UNHEALTHY, out
    assert out.splitlines()[0] == "Plan: no changes." and "sources-unhealthy" in out
    code, out = world.run("apply", "-p", "ecampus", "--now", NOW, env=renamed)
    assert code == exitcodes.UNHEALTHY, out
    assert {k: v for k, v in world.cohorts().items() if k.startswith("etp-")} == before
    assert not (world.repo / STATE).exists()  # an unhealthy run is never the reference


def test_a_healthy_directory_stays_healthy_on_a_first_run(world: World) -> None:
    assert not (world.repo / STATE).exists()
    code, out = world.run("sources")
    assert code == exitcodes.OK, out
    assert "HEALTHY" in out.splitlines()[0] and "Reasons:" not in out
    [line] = [x for x in out.splitlines() if x.startswith("Platform ecampus:")]
    found, total, share = re.search(
        r"; (\d+) of (\d+) IAs find a directory account \(([\d.]+)%\)", line).groups()
    assert 80 <= float(share) < 100 and int(found) < int(total)
