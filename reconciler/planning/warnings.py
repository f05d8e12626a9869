"""Warning codes, one table: what each warning of a plan means and whether it makes the plan
*incomplete*.

A plan is incomplete when it cannot do something the declarations ask: a declared course or
cohort Moodle lacks, the cohort-sync plugin missing, an object Moodle holds that the
reconciler may not take over. Everything else is still planned and applied, but ``plan`` and
``apply`` exit 7 (``ExitCode.INCOMPLETE``) instead of 0 or 2, so the nightly job never
reports success while a declaration waits (DESIGN §5.8). The other warnings inform: they do
not change the exit code (``sources-unhealthy`` has its own, 4).

The planner may only emit the codes listed here (``Findings.warn`` checks it), so a new kind
of warning must say here, once, whether it leaves a declaration undone.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class WarningKind:
    """One kind of plan warning: its code, whether it makes the plan incomplete, and what it
    means (the README's table)."""

    code: str
    incomplete: bool
    meaning: str


_TABLE: tuple[WarningKind, ...] = (
    WarningKind("course-missing", True,
                "a declared sync names a course Moodle does not have; the sync waits"),
    WarningKind("cohort-missing", True,
                "a declared sync names a cohort Moodle does not have and this plan does not "
                "create (a general cohort no IA produces, or the sources are unhealthy); the "
                "sync waits"),
    WarningKind("plugin-missing", True,
                "local_ws_enrolcohort is not installed or its get_instances is not in the "
                "token's service: cohort syncs cannot be created, checked or retired, and no "
                "managed cohort is deleted (its syncs cannot be seen)"),
    WarningKind("adopt-missing", True,
                "a cohort declared with adopt: true outside the managed prefix does not exist "
                "in Moodle; nothing is created"),
    WarningKind("unmanaged-lookalike", True,
                "a declared cohort or cohort sync exists in Moodle without the reconciler's "
                "marker; left alone until the declaration says adopt: true"),
    WarningKind("general-lookalike", True,
                "a general cohort the sources compute exists in Moodle without the "
                "reconciler's marker (made by hand or by an older script): left alone, so it "
                "does not follow APOGÉE, until the marker is added to its description"),
    WarningKind("unidentified-members", True,
                "Moodle did not name some members of a managed cohort; they are neither kept "
                "nor removed on the strength of a missing answer"),
    WarningKind("course-unreadable", False,
                "Moodle could not answer for a course's enrolment instances (a name holding "
                "markup there, issue 10): no managed cohort is deleted while an unseen "
                "instance might use it; a declared sync there is sync-waits (incomplete)"),
    WarningKind("sync-waits", True,
                "a declared sync of a course Moodle cannot read waits until it can be read"),
    WarningKind("manual-enrolled-otherwise", True,
                "members of a method: manual sync's cohort are already active in the course "
                "without the sync's role, through an enrolment the reconciler did not make: "
                "not enrolled (that would rewrite someone else's enrolment); give the role by "
                "hand if it is wanted"),
    WarningKind("pattern-unresolved", True,
                "a course pattern's courses cannot be told (categories unreadable, or its "
                "category not found): its syncs are not made, and the reconciler's instances "
                "of its cohorts and roles are held as they are"),
    WarningKind("sources-unhealthy", False,
                "APOGÉE or the directory cannot be trusted: general cohorts are left as they "
                "are (exit 4, which covers it)"),
    WarningKind("cohort-kept", False,
                "a managed cohort no longer declared is kept because cohort syncs still use it "
                "(deleting it would unenrol their users)"),
    WarningKind("etape-empty", False,
                "a general cohort's étape has no IA in force: its members go, the cohort stays "
                "for the syncs that use it"),
    WarningKind("name-made-safe", False,
                "a declared name holds what Moodle's PARAM_TEXT would strip (markup): it is "
                "written in a form Moodle keeps as is"),
    WarningKind("user-map-ignored", False,
                "the user-id map could not be used (unreadable, edited, another platform's or "
                "another site's): every user was looked up afresh"),
    WarningKind("user-map-corrected", False,
                "the night's re-verification found stale user-id map entries and corrected "
                "them; no write ever rested on them"),
    WarningKind("expiring", False, "a sync expires within the platform's warning window"),
    WarningKind("expired", False, "a sync is past its expiry date: it is retired"),
    WarningKind("cohort-sync-discouraged", False,
                "a cohort sync where the platform discourages them (method: manual preferred)"),
    WarningKind("manual-end-kept", False,
                "a manual enrolment the reconciler made is no longer wanted, but the user holds "
                "a role in the course the reconciler did not give: the enrolment is left as it "
                "is (end it by hand if it should end)"),
    WarningKind("manual-role-kept", False,
                "a user one method: manual sync no longer wants is still wanted by another of "
                "the course: their one manual enrolment stays, with the role the first gave"),
    WarningKind("manual-ledger-missing", False,
                "no record of the manual enrolments the reconciler made on this site (a first "
                "run, or .reconciler/ lost with the CI cache): nothing is ended on the strength "
                "of a missing record; Moodle ends those enrolments at their end date"),
    WarningKind("manual-ledger-incomplete", False,
                "the record of manual enrolments restarted while enrolments made before it may "
                "still be active: those are not ended early, only at their end date"),
    WarningKind("pattern-matches-nothing", False,
                "a course pattern matches no course of the platform today"),
    WarningKind("pattern-overlap", False,
                "two course patterns give one course the same cohort and role: the first by "
                "name is used"),
    WarningKind("review-due", False,
                "a manual cohort's periodic review (review_every) is due or due soon: its "
                "owners check the members and move reviewed: in a merge request"),
    WarningKind("grace-restarted", False,
                "the leavers record was lost or unreadable: grace periods start afresh (leavers "
                "stay longer, never shorter)"),
    WarningKind("grace-not-applied", False,
                "a grace-period change leaves some members who left with none: they are removed "
                "now, through the failsafes"),
)  # fmt: skip
WARNING_KINDS: dict[str, WarningKind] = {k.code: k for k in _TABLE}


def makes_incomplete(code: str) -> bool:
    """Whether a warning with ``code`` leaves something declared undone. A code this version
    does not know (a plan saved by another version) counts as incomplete: unknown is not
    fine."""
    kind = WARNING_KINDS.get(code)
    return True if kind is None else kind.incomplete
