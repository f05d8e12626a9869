"""Desired state of one platform: declarations + general cohorts, minus what has expired.

Course patterns stay unexpanded here: which courses they match is Moodle's to tell
(``planning.patterns.expand_patterns``, once the courses are read)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from ..clock import is_expired
from ..declarations.loader import DeclarationSet, ManualCohort, SyncDeclaration
from ..errors import DeclarationErrors
from ..paramtext import safe_text
from ..settings import PlatformSettings, Settings
from .overlap import overlap_report
from .state import DesiredCohort, DesiredPattern, DesiredState, DesiredSync

if TYPE_CHECKING:
    from ..sources import SourceSnapshot


def build_desired(
    decls: DeclarationSet,
    settings: Settings,
    platform_name: str,
    today: dt.date,
    snapshot: SourceSnapshot | None,
) -> DesiredState:
    """What ``platform_name`` should hold on ``today`` (a Europe/Paris date): its manual
    cohorts and syncs from the declarations, its general cohorts from ``snapshot`` (left
    frozen as Moodle has them when the snapshot is missing or unhealthy), minus what has
    expired. Raises ``DeclarationErrors`` when the declarations have errors (a file with
    errors must never read as a removal)."""
    if decls.has_errors:
        raise DeclarationErrors(
            "the declarations have errors (run `reconcile validate`); nothing is planned"
        )
    platform = settings.platform(platform_name)
    desired = DesiredState(platform=platform_name)
    general = platform.general_cohorts
    if general.enabled:
        desired.general_pattern = general.idnumber_template
        if snapshot is None or not snapshot.healthy:
            desired.general_frozen = True
            desired.frozen_reasons = list(snapshot.reasons) if snapshot else ["sources not read"]
        else:
            for gc in snapshot.general_cohorts.get(platform_name, []):
                desired.cohorts[gc.idnumber] = DesiredCohort(
                    idnumber=gc.idnumber,
                    name=_safe(desired, "cohort", gc.idnumber, gc.name),
                    kind="general",
                    members=frozenset(gc.members),
                    source=f"APOGÉE {gc.cod_etp}-{gc.cod_vrs_vet}",
                    description=gc.description,
                    category=None if gc.context in ("", "system") else gc.context,
                    uncertain=frozenset(gc.uncertain),
                )
        overlap = overlap_report(general, snapshot, platform_name, settings.academic_year, today)
        if overlap:
            desired.general_report["overlap"] = overlap
        if snapshot is not None:
            desired.source_digest = snapshot.digest
            desired.source_stats = {
                "healthy": snapshot.healthy,
                "reasons": list(snapshot.reasons),
                "notes": list(snapshot.notes),
            }
            if snapshot.rollover_from is not None:
                desired.source_stats["rollover"] = {
                    "from": snapshot.rollover_from,
                    "to": snapshot.academic_year,
                }
            # The directory's people as they are: the planner reads one only for an account
            # it creates (a copy per person cost 0.4 s at 100,000 students).
            desired.accounts = snapshot.people

    for cohort in decls.cohorts_of(platform_name):
        if is_expired(cohort.expires, today):
            desired.expired_cohorts.append(cohort.idnumber)
            continue
        desired.cohorts[cohort.idnumber] = DesiredCohort(
            idnumber=cohort.idnumber,
            name=_safe(desired, "cohort", cohort.idnumber, cohort.name),
            kind="manual",
            members=frozenset(cohort.members),
            source=str(cohort.location),
            description=cohort.description,
            visible=cohort.visible,
            category=cohort.category,
            adopt=cohort.adopt,
        )

    for decl in decls.syncs_of(platform_name):
        sync = _desired_sync(decl, platform, desired)
        if is_expired(decl.expires, today) or decl.cohort in desired.expired_cohorts:
            desired.expired_syncs.append(sync)
        else:
            desired.syncs.append(sync)

    # Course patterns wait for Moodle's courses (planning.patterns.expand_patterns); an
    # expired entry of a pattern is reported once, under the pattern's label.
    for pattern in decls.patterns_of(platform_name):
        in_force = []
        for decl in pattern.syncs:
            sync = _desired_sync(decl, platform, desired)
            if is_expired(decl.expires, today) or decl.cohort in desired.expired_cohorts:
                desired.expired_syncs.append(sync)
            else:
                in_force.append(sync)
        desired.patterns.append(DesiredPattern(
            name=pattern.name, rule=pattern.rule, source=str(pattern.location),
            owners=pattern.owners, syncs=tuple(in_force), shortname=pattern.shortname,
            category=pattern.category, subcategories=pattern.subcategories,
            exclude=pattern.exclude))
    for exclusion in decls.exclusions:
        if exclusion.platform == platform_name:
            desired.pattern_exclusions.setdefault(exclusion.course, {})[exclusion.pattern] = (
                str(exclusion.location))
    desired.reviews = reviews_due(decls.cohorts_of(platform_name), today,
                                  platform.sync_policy.expiry_warning_days)
    return desired


def _desired_sync(
    decl: SyncDeclaration, platform: PlatformSettings, desired: DesiredState
) -> DesiredSync:
    """The sync ``decl`` declares (a course's file, or a course pattern's entry, whose
    ``course`` is then the pattern's label), its group name made safe for Moodle."""
    return DesiredSync(
        course=decl.course,
        cohort=decl.cohort,
        role=decl.role,
        roleid=platform.roles[decl.role],
        method=decl.method,
        reason=decl.reason,
        source=str(decl.location),
        group=_safe(desired, "group", decl.course, decl.group) if decl.group else None,
        expires=decl.expires,
        adopt=decl.adopt,
        owners=decl.owners,
        grace_days=decl.grace_days,
        pattern=decl.pattern,
    )


def reviews_due(cohorts: list[ManualCohort], today: dt.date, within: int) -> list[dict]:
    """The manual cohorts (in force) whose review of the members is due on or before
    ``today + within`` days: ``{cohort, name, due, days_left, review_every, reviewed,
    owners, source}`` (``days_left`` negative once overdue), by due day."""
    out = []
    for cohort in cohorts:
        due = cohort.review_due
        if due is None or is_expired(cohort.expires, today) or (due - today).days > within:
            continue
        assert cohort.reviewed is not None and cohort.review_every is not None
        out.append({
            "cohort": cohort.idnumber, "name": cohort.name, "due": due.isoformat(),
            "days_left": (due - today).days, "review_every": cohort.review_every,
            "reviewed": cohort.reviewed.isoformat(), "owners": list(cohort.owners),
            "source": f"{cohort.location.file}:{cohort.reviewed_line or cohort.location.line}",
        })
    return sorted(out, key=lambda r: (r["due"], r["cohort"]))


def _safe(desired: DesiredState, kind: str, where: str, name: str) -> str:
    """The name Moodle will be sent: ``name`` if Moodle can return it unchanged, else its
    safe form (``reconciler.paramtext.safe_text``), recorded in ``desired.unsafe_names``
    under (kind, cohort idnumber or course shortname, safe name) for the plan's warnings. A
    cohort name with markup breaks local_ws_enrolcohort for the whole platform once synced
    (issue 10); the lint rule ``markup-in-name`` refuses it in the files, and names built
    from APOGÉE labels by the name template are only ever made safe here."""
    safe = safe_text(name)
    if safe != name:
        desired.unsafe_names[(kind, where, safe)] = name
    return safe
