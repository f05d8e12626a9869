"""What a platform holds, next to what the repository declares: the common ground of
``reconcile import`` and ``reconcile audit``.

One pass of the plan's own bulk reads (``planning.reader.read_actual``: site info, every
cohort, batched members and user look-ups, every course, every cohort-sync instance), asked
to read the members of the unmanaged cohorts too, plus one
``core_cohort_search_cohorts`` call that lists the cohorts of the system context: the web
services never say a cohort's context (CONTRACT §1.7), so every cohort missing from that
answer lives in a course category. Nothing here writes to Moodle.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from ..declarations.loader import DeclarationSet
from ..moodle.errors import AccessDenied
from ..planning.patterns import expand_patterns
from ..planning.reader import MoodleReads, read_actual
from ..planning.state import ActualCohort, ActualInstance, DesiredState
from ..settings import PlatformSettings

SEARCH_COHORTS = "core_cohort_search_cohorts"

CohortKind = Literal["general", "manual", "foreign"]
Context = Literal["system", "category", "unknown"]


class InventoryReads(MoodleReads, Protocol):
    """The reader's calls plus the one search that tells system cohorts apart."""

    def search_cohorts(
        self,
        query: str = "",
        context: Any = 1,
        includes: str = "parents",
        *,
        limitfrom: int = 0,
        limitnum: int = 0,
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class PlatformCohort:
    """One Moodle cohort, classified.

    ``kind`` follows the idnumber: ``general`` matches the platform's general-cohort
    template (when it has general cohorts), ``manual`` starts with the manual prefix,
    ``foreign`` is anything else (another tool's, or made in the UI without the prefix; an
    empty idnumber too). ``owned``: its description carries the reconciler's marker.
    ``declared``: a manual-cohort file of the repository names its idnumber. ``members`` is
    None when its members were not read (an unselected unmanaged cohort).
    """

    id: int
    idnumber: str
    name: str
    description: str
    visible: bool
    kind: CohortKind
    owned: bool
    declared: bool
    context: Context
    members: frozenset[int] | None

    @property
    def size(self) -> int | None:
        """Members, or None when they were not read."""
        return None if self.members is None else len(self.members)


@dataclass(frozen=True)
class PlatformSync:
    """One cohort-sync instance (``local_ws_enrolcohort_get_instances``), resolved.

    ``course`` is the course shortname (``core_course_get_courses_by_field``, raw), or ""
    when the course is not listed; ``cohort`` the cohort it syncs (None: a cohort Moodle no
    longer lists); ``role`` the platform's role shortname for ``instance.roleid`` (None:
    a role ``platforms.yaml`` does not map). ``declared``: a ``method: cohort`` sync of the
    repository has the same course, cohort idnumber and role.
    """

    instance: ActualInstance
    course: str
    cohort: PlatformCohort | None
    role: str | None
    declared: bool

    @property
    def owned(self) -> bool:
        return self.instance.owned

    @property
    def enabled(self) -> bool:
        return self.instance.status == 0


@dataclass
class Inventory:
    """Everything import and audit need to know about one platform.

    ``usernames`` maps Moodle user ids to usernames for every member read (a member missing
    from it has no username Moodle would give). ``duplicate_idnumbers`` are idnumbers that
    several Moodle cohorts share. ``contexts_known`` is False when the token's service may
    not call ``core_cohort_search_cohorts`` (every context is then ``unknown``);
    ``plugin_available`` False when it may not list cohort-sync instances.
    """

    platform: PlatformSettings
    cohorts: list[PlatformCohort] = field(default_factory=list)
    syncs: list[PlatformSync] = field(default_factory=list)
    usernames: dict[int, str] = field(default_factory=dict)
    courses: dict[int, str] = field(default_factory=dict)
    duplicate_idnumbers: frozenset[str] = frozenset()
    contexts_known: bool = True
    plugin_available: bool = True



def cohort_kind(platform: PlatformSettings, idnumber: str) -> CohortKind:
    """general / manual / foreign, from the idnumber alone (see :class:`PlatformCohort`)."""
    general = platform.general_cohorts
    if idnumber and general.enabled and general.idnumber_regex().match(idnumber):
        return "general"
    if idnumber.startswith(platform.manual_idnumber_prefix):
        return "manual"
    return "foreign"


def read_inventory(
    client: InventoryReads,
    platform: PlatformSettings,
    decls: DeclarationSet,
    desired: DesiredState,
    read_members_of: Callable[[Mapping[str, Any]], bool] = lambda cohort: True,
) -> Inventory:
    """Read ``platform`` once and classify what it holds against ``decls``.

    ``desired`` is what the plan would want (its usernames are looked up as the plan does);
    ``read_members_of`` picks the unmanaged cohorts (``core_cohort_get_cohorts`` records)
    whose members are read as well (default: all). Raises MoodleError; a service that lacks
    ``core_cohort_search_cohorts`` is not an error (``contexts_known`` False).
    """
    actual = read_actual(client, platform, desired, unmanaged_members=read_members_of)
    system_ids, contexts_known = _system_cohort_ids(client)

    declared_cohorts = {c.idnumber for c in decls.cohorts_of(platform.name)}
    role_names: dict[int, str] = {}
    for name, roleid in sorted(platform.roles.items()):
        role_names.setdefault(roleid, name)
    # The course patterns' syncs are declared ones too, in the courses they match today.
    from_patterns = [s for s in expand_patterns(desired, actual).syncs if s.pattern is not None]
    declared_syncs = {
        (s.course, s.cohort, platform.roles.get(s.role, -1))
        for s in [*decls.syncs_of(platform.name), *from_patterns]
        if s.method == "cohort"
    }

    read: dict[int, ActualCohort] = {c.id: c for c in actual.cohorts.values()}
    read.update(actual.unmanaged_cohorts)
    inventory = Inventory(
        platform=platform,
        usernames=dict(actual.usernames),
        courses={cid: shortname for shortname, cid in actual.courses.items()},
        contexts_known=contexts_known,
        plugin_available=actual.plugin_available,
    )
    every_id = set(read) | set(actual.unmanaged_cohort_ids)
    idnumbers = Counter(
        read[i].idnumber if i in read else actual.unmanaged_cohort_ids[i] for i in every_id
    )
    inventory.duplicate_idnumbers = frozenset(i for i, n in idnumbers.items() if i and n > 1)
    for cid in sorted(every_id):
        have = read.get(cid)
        idnumber = have.idnumber if have else actual.unmanaged_cohort_ids[cid]
        context: Context = "unknown"
        if contexts_known:
            context = "system" if cid in system_ids else "category"
        inventory.cohorts.append(
            PlatformCohort(
                id=cid,
                idnumber=idnumber,
                name=have.name if have else "",
                description=have.description if have else "",
                visible=have.visible if have else True,
                kind=cohort_kind(platform, idnumber),
                owned=have.owned if have else False,
                declared=bool(idnumber) and idnumber in declared_cohorts,
                context=context,
                members=have.members if have else None,
            )
        )
    by_id = {c.id: c for c in inventory.cohorts}
    for inst in actual.instances:
        cohort = by_id.get(inst.cohortid)
        course = inventory.courses.get(inst.courseid, inst.course)
        key = (course, cohort.idnumber if cohort else inst.cohort, inst.roleid)
        inventory.syncs.append(
            PlatformSync(
                instance=inst,
                course=course,
                cohort=cohort,
                role=role_names.get(inst.roleid),
                declared=key in declared_syncs,
            )
        )
    return inventory


def _system_cohort_ids(client: InventoryReads) -> tuple[set[int], bool]:
    """Ids of the cohorts in the system context, in one call (``includes=self``, no limit:
    ``limitfrom`` is a page number there, CONTRACT §3.1); (set(), False) when the token's
    service may not search cohorts."""
    try:
        found = client.search_cohorts(
            "", {"contextlevel": "system", "instanceid": 0}, "self", limitfrom=0, limitnum=0
        )
    except AccessDenied:
        return set(), False
    return {int(c["id"]) for c in found}, True
