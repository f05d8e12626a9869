"""The username ↔ user-id map kept in .reconciler/ between runs (issue 14): each safety rule,
end to end through the CLI against the Moodle emulator, plus the rotation as a property.

The platform is ``prelude`` (manual cohorts only: the map serves them exactly as it serves
the general cohorts, without the sources). Moodle's side changes through its web services:
accounts renamed (``core_user_update_users``), deleted and re-created.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git
import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.cli import exitcodes, main
from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle.client import MoodleClient
from reconciler.moodle.types import NewUser
from reconciler.planning.usermap import VERIFY_DAYS, Entry, due_for_verification, load_map, save_map

REPO = Path(__file__).resolve().parent.parent
TOKEN = "map-token"
NIGHT = dt.datetime(2026, 11, 28, 2, 0, tzinfo=dt.UTC)
COHORT = "man-tutorat"
PEOPLE = [f"e2024{n:04d}" for n in range(1, 15)]  # 14 students: slices of 2 a night


@dataclass
class Site:
    """A repository declaring one prelude cohort, and the Moodle emulator it reconciles."""

    repo: Path
    emu: MoodleEmulator
    env: dict[str, str]

    @property
    def map_path(self) -> Path:
        return self.repo / ".reconciler" / "user-map-prelude.json"

    def run(self, *args: str, day: int = 0) -> tuple[int, str]:
        now = (NIGHT + dt.timedelta(days=day)).isoformat()
        result = CliRunner().invoke(main, ["--repo", str(self.repo), *args, "--now", now],
                                    env=self.env)
        if result.exception and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.output

    def plan(self, day: int = 0) -> dict[str, Any]:
        out = self.repo.parent / f"plan-{day}.json"
        code, output = self.run("plan", "-p", "prelude", "--out", str(out), day=day)
        assert code in (exitcodes.OK, exitcodes.CHANGES), output
        return json.loads(out.read_text(encoding="utf-8"))

    def apply(self, day: int = 0) -> str:
        code, output = self.run("apply", "-p", "prelude", day=day)
        assert code == exitcodes.OK, output
        return output

    def declare(self, members: list[str]) -> None:
        path = self.repo / "cohorts" / "prelude" / "cohorts" / f"{COHORT}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump({
            "idnumber": COHORT, "name": "Tutorat", "owners": ["scolarite@example.org"],
            "members": members}), encoding="utf-8")
        repo = git.Repo(self.repo)
        repo.git.add(A=True)
        repo.index.commit(f"{COHORT}: {len(members)} members")

    def client(self) -> MoodleClient:
        return MoodleClient(self.emu.url, TOKEN)

    def ids(self) -> dict[str, int]:
        with self.client() as c:
            return {u["username"]: int(u["id"]) for u in c.get_users_by_field("username", PEOPLE)}

    def members(self) -> dict[int, str]:
        """The cohort's members in Moodle: id -> username."""
        with self.client() as c:
            cohort = next(x for x in c.get_cohorts() if x["idnumber"] == COHORT)
            ids = c.get_cohort_members([int(cohort["id"])])[int(cohort["id"])]
            return {int(u["id"]): u["username"] for u in c.get_users_by_field("id", ids)}

    def rename(self, old: str, new: str) -> int:
        userid = self.ids()[old]
        with self.client() as c:
            c.call("core_user_update_users", {"users": [{"id": userid, "username": new}]})
        return userid

    def recreate(self, username: str) -> tuple[int, int]:
        """Delete the account and create it again: Moodle gives it a new id."""
        old = self.ids()[username]
        with self.client() as c:
            c.delete_users([old])
            new = c.create_users([NewUser(username=username, firstname="Re", lastname="Created",
                                          email=f"{username}@example.org", auth="manual",
                                          password="Re-created-1!")])
        return old, int(new[0]["id"])


def seeded_emulator(people: list[str]) -> MoodleEmulator:
    emu = MoodleEmulator(EmulatorConfig(token=TOKEN)).start()
    emu.seed({"users": [{"username": u, "firstname": u, "lastname": "X",
                         "email": f"{u}@example.org"} for u in people]})
    return emu


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    repo = tmp_path / "repo"
    (repo / "cohorts").mkdir(parents=True)
    shutil.copy(REPO / "cohorts" / "platforms.yaml", repo / "cohorts" / "platforms.yaml")
    (repo / ".gitignore").write_text(".reconciler/\n", encoding="utf-8")
    git.Repo.init(repo)
    emu = seeded_emulator(PEOPLE)
    site = Site(repo, emu, {"PRELUDE_URL": emu.url, "PRELUDE_TOKEN": TOKEN})
    site.declare(PEOPLE[:12])
    site.apply(day=0)  # first run: no map yet, every user looked up; the map is saved
    yield site
    emu.stop()


def username_lookups(emu: MoodleEmulator) -> int:
    return emu.call_counts["core_user_get_users_by_field"]


# -- the map is used, and only to conclude "nothing to do" ----------------------------------


def test_first_run_saves_the_map_and_the_next_night_looks_up_only_its_slice(site: Site) -> None:
    assert site.map_path.exists()
    entries, why = load_map(site.map_path, "prelude", site.emu.siteurl)
    assert why is None and set(entries) == set(PEOPLE[:12])
    site.emu.reset_counters()
    plan = site.plan(day=1)
    assert plan["actions"] == []
    report = plan["user_map"]
    assert report["used"] is True
    assert report["verified"] == 2  # ceil(12 / 7)
    assert report["looked_up"] == 2 and report["trusted"] == 10
    assert username_lookups(site.emu) == 1  # the slice, in one call


def test_a_missing_map_means_a_full_look_up_never_an_error(site: Site) -> None:
    site.map_path.unlink()
    plan = site.plan(day=1)
    assert plan["actions"] == []
    assert plan["user_map"]["used"] is False
    assert plan["user_map"]["ignored"] == "no map yet"
    assert plan["user_map"]["looked_up"] == 12
    assert not [w for w in plan["warnings"] if w["code"].startswith("user-map")]
    assert site.map_path.exists()  # made again


def test_every_user_a_write_concerns_is_looked_up_afresh(site: Site) -> None:
    """A map that swaps two users would, if trusted, remove one and add the other."""
    ids = site.ids()
    entries, _ = load_map(site.map_path, "prelude", site.emu.siteurl)
    tomorrow = NIGHT.date() + dt.timedelta(days=1)
    # a is a member, b is neither declared nor a member; neither in tomorrow's slice, so
    # that only the re-check before the plan is final can catch them.
    a, b = next(
        (a, b) for b in PEOPLE[12:] for a in PEOPLE[:12]
        if not {a, b} & due_for_verification({**entries, b: Entry(0, NIGHT.date())}, tomorrow))
    entries[a], entries[b] = Entry(ids[b], NIGHT.date()), Entry(ids[a], NIGHT.date())
    save_map(site.map_path, "prelude", site.emu.siteurl, entries, NIGHT)
    before = site.members()

    plan = site.plan(day=1)
    assert plan["actions"] == [], plan["summary"]  # both "writes" were checked, and vanished
    assert plan["user_map"]["rechecked"] >= 2
    corrected = {c["username"] for c in plan["user_map"]["corrected"]}
    assert a in corrected
    site.apply(day=1)
    assert site.members() == before


def test_an_account_deleted_and_recreated_is_added_with_its_new_id(site: Site) -> None:
    member = PEOPLE[3]
    old, new = site.recreate(member)  # Moodle drops the deleted account from the cohort
    plan = site.plan(day=1)
    adds = [a for a in plan["actions"] if a["kind"] == "add_members"]
    assert [(a["details"]["usernames"], a["details"]["userids"]) for a in adds] == [
        ([member], [new])]
    assert not [a for a in plan["actions"] if a["kind"] == "remove_members"]
    assert {"username": member, "was": old, "now": new} in plan["user_map"]["corrected"]
    assert any(w["code"] == "user-map-corrected" for w in plan["warnings"])
    site.apply(day=1)
    assert site.members()[new] == member and old not in site.members()


def test_a_username_renamed_in_moodle_and_in_the_declarations_is_never_removed(
    site: Site,
) -> None:
    """The login changed (same person, same id): no removal, no re-add (which would unenrol)."""
    old_name, new_name = PEOPLE[5], "e2024renamed"
    userid = site.rename(old_name, new_name)
    site.declare([new_name if u == old_name else u for u in PEOPLE[:12]])
    plan = site.plan(day=1)
    assert plan["actions"] == [], plan["summary"]
    site.apply(day=1)
    assert site.members()[userid] == new_name


def test_a_renamed_member_who_leaves_is_removed_under_the_name_moodle_gives_now(
    site: Site,
) -> None:
    leaver, new_name = PEOPLE[7], "e2024parti"
    userid = site.rename(leaver, new_name)
    site.declare([u for u in PEOPLE[:12] if u != leaver])
    plan = site.plan(day=1)
    removes = [a["details"] for a in plan["actions"] if a["kind"] == "remove_members"]
    assert [(d["usernames"], d["userids"]) for d in removes] == [([new_name], [userid])]
    assert not [a for a in plan["actions"] if a["kind"] == "add_members"]


def test_a_stale_entry_is_corrected_by_the_rotation_within_a_week(site: Site) -> None:
    """Renamed in Moodle only: the map says "nothing to do" until its slice comes round,
    then the plan is the one a full look-up makes, and says what it corrected."""
    stale, new_name = PEOPLE[9], "e2024autre"
    userid = site.rename(stale, new_name)
    found = None
    for day in range(1, VERIFY_DAYS + 1):
        plan = site.plan(day=day)
        if plan["user_map"]["corrections"]:
            found = day, plan
            break
        assert plan["actions"] == []
    assert found is not None, "the stale entry was not re-verified within a week"
    day, plan = found
    assert {"username": stale, "was": userid, "now": None} in plan["user_map"]["corrected"]
    warning = next(w for w in plan["warnings"] if w["code"] == "user-map-corrected")
    assert stale in warning["message"]
    site.map_path.unlink()
    full = site.plan(day=day)
    assert full["actions"] == plan["actions"]  # same plan as with no map at all
    assert stale in full["pending_users"]


# -- a map that must not be used: a full look-up, never an error, never a removal -------------


def _same_plan_as_without_map(site: Site, plan: dict[str, Any]) -> None:
    site.map_path.unlink()
    assert site.plan(day=1)["digest"] == plan["digest"]


def test_a_map_from_another_site_is_ignored(site: Site, tmp_path: Path) -> None:
    # The same people created in another order on another site: other ids.
    other = seeded_emulator(list(reversed(PEOPLE)))
    try:
        other_env = {"PRELUDE_URL": other.url, "PRELUDE_TOKEN": TOKEN}
        foreign = Site(site.repo, other, other_env)
        shutil.copy(site.map_path, tmp_path / "site-a-map.json")
        foreign.map_path.unlink()
        foreign.apply(day=0)  # the cohort on the other site
        shutil.copy(tmp_path / "site-a-map.json", foreign.map_path)  # ...then the wrong map
        plan = foreign.plan(day=1)
        assert plan["actions"] == [], plan["summary"]
        assert plan["user_map"]["used"] is False
        assert "another Moodle site" in plan["user_map"]["ignored"]
        assert any(w["code"] == "user-map-ignored" for w in plan["warnings"])
        entries, why = load_map(foreign.map_path, "prelude", other.siteurl)
        assert why is None and entries[PEOPLE[0]].userid != load_map(
            tmp_path / "site-a-map.json", "prelude", site.emu.siteurl)[0][PEOPLE[0]].userid
    finally:
        other.stop()


def test_a_truncated_map_is_ignored(site: Site) -> None:
    text = site.map_path.read_text(encoding="utf-8")
    site.map_path.write_text(text[: len(text) // 2], encoding="utf-8")
    code, output = site.run("plan", "-p", "prelude", day=1)
    assert code == exitcodes.OK, output
    site.map_path.write_text(text[: len(text) // 2], encoding="utf-8")
    plan = site.plan(day=1)
    assert plan["actions"] == []
    assert "unreadable" in plan["user_map"]["ignored"]
    _same_plan_as_without_map(site, plan)


@pytest.mark.parametrize(
    "edit, why",
    [
        (lambda d: d["verified"][next(iter(d["verified"]))].update({PEOPLE[0]: 999}),
         "checksum"),
        (lambda d: d.update(platform="ecampus"), "platform 'ecampus'"),
        (lambda d: d.update(version=99), "version 99"),
        (lambda d: d.update(count=3), "holds 12 entries"),
        (lambda d: d.clear(), "not a user-id map"),
    ],
    ids=["edited-entry", "other-platform", "other-version", "wrong-count", "empty"],
)
def test_a_corrupt_or_foreign_map_is_ignored(site: Site, edit: Any, why: str) -> None:
    data = json.loads(site.map_path.read_text(encoding="utf-8"))
    edit(data)
    site.map_path.write_text(json.dumps(data), encoding="utf-8")
    plan = site.plan(day=1)
    assert plan["actions"] == []
    assert why in plan["user_map"]["ignored"]
    _same_plan_as_without_map(site, plan)


def test_garbage_in_the_map_file_is_ignored(site: Site) -> None:
    site.map_path.write_bytes(b"\xff\xfe not json at all")
    plan = site.plan(day=1)
    assert plan["actions"] == [] and plan["user_map"]["used"] is False


# -- the rotation -------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    ages=st.lists(st.integers(min_value=0, max_value=30), min_size=1, max_size=80),
    skipped=st.sets(st.integers(min_value=1, max_value=2 * VERIFY_DAYS), max_size=5),
)
def test_every_entry_is_verified_within_a_week_of_nights(ages: list[int],
                                                         skipped: set[int]) -> None:
    """Whatever the map's history, nightly runs re-verify every entry at least once every
    VERIFY_DAYS days (a skipped night only makes the next one verify more)."""
    today = dt.date(2026, 11, 28)
    entries = {f"u{n}": Entry(n + 1, today - dt.timedelta(days=age))
               for n, age in enumerate(ages)}
    last = {u: e.verified for u, e in entries.items()}
    for night in range(1, 4 * VERIFY_DAYS):
        day = today + dt.timedelta(days=night)
        if night in skipped:
            continue
        for username in due_for_verification(entries, day):
            entries[username] = Entry(entries[username].userid, day)
        for username, entry in entries.items():
            if night > VERIFY_DAYS:
                assert (day - entry.verified).days < VERIFY_DAYS, (username, last[username])
    assert len(due_for_verification(entries, day)) >= -(-len(entries) // VERIFY_DAYS)


def test_a_map_made_in_one_night_is_verified_a_seventh_a_night() -> None:
    today = dt.date(2026, 11, 28)
    entries = {f"u{n:03d}": Entry(n + 1, today) for n in range(70)}
    seen: list[set[str]] = []
    for night in range(1, VERIFY_DAYS + 1):
        day = today + dt.timedelta(days=night)
        due = due_for_verification(entries, day)
        seen.append(due)
        for username in due:
            entries[username] = Entry(entries[username].userid, day)
    assert [len(s) for s in seen] == [10] * VERIFY_DAYS
    assert set().union(*seen) == set(entries)
