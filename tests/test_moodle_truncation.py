"""A site whose PHP ``max_input_vars`` is below what a request carries (issue 9, fault
matrix): PHP keeps the first fields and drops the rest silently, so a cut request used to
run on a cut list (a partial write reported done, a partial read taken for the whole). The
client sends ``wsfunction`` last: any cut drops it first and Moodle refuses the call whole.

Checked here on the emulator, whose ``$_POST`` truncation is PHP's; the same answer was
recorded on the real Moodle 4.5 site with ``max_input_vars = 20`` (``invalidparameter``,
"Invalid parameter value detected", nothing run).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.emulator import EmulatorConfig, MoodleEmulator
from reconciler.moodle import errors
from reconciler.moodle.client import MoodleClient

USERS = [f"u{i:02d}" for i in range(40)]
# 3 reserved fields + 6 members of 4 fields: in the old order the cut fell exactly between
# two members, and the first 6 were added "successfully".
SITE_LIMIT = 27


@pytest.fixture
def site() -> Iterator[tuple[MoodleEmulator, MoodleClient, int, list[int]]]:
    with MoodleEmulator(EmulatorConfig(token="T")) as emu:
        emu.seed({"users": [{"username": u, "firstname": u, "lastname": "X",
                             "email": f"{u}@x.fr"} for u in USERS],
                  "cohorts": [{"idnumber": "K", "name": "K", "members": []}]})
        with MoodleClient(emu.url, "T", backoff=0.01) as client:
            ids = [int(u["id"]) for u in client.get_users_by_field("username", USERS)]
            cohort = int(client.get_cohorts()[0]["id"])
            emu.set_config(max_input_vars=SITE_LIMIT)  # the client still packs up to 1000
            yield emu, client, cohort, ids


def test_a_cut_write_is_refused_whole_never_half_done(
    site: tuple[MoodleEmulator, MoodleClient, int, list[int]]
) -> None:
    emu, client, cohort, ids = site
    with pytest.raises(errors.InvalidParameter, match=r"carried 83 form fields; a PHP "
                                                      r"max_input_vars below that cuts it"):
        client.add_cohort_members([(cohort, uid) for uid in ids[:20]])
    emu.set_config(max_input_vars=10000)
    assert client.get_cohort_members([cohort]) == {cohort: []}  # not 6 of 20


def test_a_cut_read_is_never_taken_for_the_whole_answer(
    site: tuple[MoodleEmulator, MoodleClient, int, list[int]]
) -> None:
    _, client, _, _ = site
    # Refused whole, the look-up is split (as for any refused value) into requests that
    # fit: every user comes back, not the first 22.
    found = client.get_users_by_field("username", USERS)
    assert sorted(u["username"] for u in found) == USERS
