"""``reconcile expiring``: what expires soon, whose it is and who added it, for a reminder."""

from __future__ import annotations

import datetime as dt
import json
import smtplib
from collections import defaultdict
from dataclasses import asdict, dataclass
from email.message import EmailMessage
from pathlib import Path

from ..declarations.history import AddedBy, GitError, added_by
from ..declarations.loader import DeclarationSet, Location
from ..declarations.reviews import describe_review


@dataclass(frozen=True)
class Expiring:
    """One entry that ends soon, or one review that falls due: ``expires`` is the last day
    in force (the due day of a review), ``days_left`` from today (negative: past)."""

    kind: str  # "sync" | "cohort" | "review"
    platform: str
    what: str
    expires: str
    days_left: int
    owners: tuple[str, ...]
    location: str
    reason: str = ""
    commit: str | None = None
    author: str | None = None
    added_on: str | None = None


def find_expiring(decls: DeclarationSet, repo: Path, today: dt.date, within: int) -> list[Expiring]:
    """Entries whose last day in force is within ``within`` days (already expired included),
    the course patterns' entries among them, and manual cohorts whose review of the members
    falls due within ``within`` days (overdue included; ``added_by`` then names who last
    moved ``reviewed``)."""
    out = _reviews(decls, repo, today, within)
    items = [("cohort", c) for c in decls.cohorts] + [("sync", s) for s in decls.all_syncs()]
    for kind, item in items:
        if item.expires is None or (item.expires - today).days > within:
            continue
        who = _who(repo, item.location)
        if kind == "cohort":
            what = f"cohort {item.idnumber} ({item.name})"  # type: ignore[union-attr]
            reason = ""
        else:
            what = f"{item.course}: {item.cohort} as {item.role} ({item.method})"  # type: ignore[union-attr]
            reason = item.reason  # type: ignore[union-attr]
        out.append(
            Expiring(
                kind=kind,
                platform=item.platform,
                what=what,
                expires=item.expires.isoformat(),
                days_left=(item.expires - today).days,
                owners=tuple(item.owners),
                location=str(item.location),
                reason=reason,
                commit=who.commit if who else None,
                author=who.author if who else None,
                added_on=who.date if who else None,
            )
        )
    return sorted(out, key=lambda e: (e.expires, e.platform, e.what))


def _who(repo: Path, location: Location) -> AddedBy | None:
    try:
        return added_by(repo, location)
    except GitError:
        return None


def _reviews(decls: DeclarationSet, repo: Path, today: dt.date, within: int) -> list[Expiring]:
    out = []
    for cohort in decls.cohorts:
        due = cohort.review_due
        if due is None or cohort.expires is not None or (due - today).days > within:
            continue
        line = Location(cohort.location.file, cohort.reviewed_line or cohort.location.line)
        who = _who(repo, line)
        out.append(Expiring(
            kind="review", platform=cohort.platform,
            what=f"review of the members of cohort {cohort.idnumber} ({cohort.name})",
            expires=due.isoformat(), days_left=(due - today).days, owners=cohort.owners,
            location=str(line), reason=describe_review(cohort),
            commit=who.commit if who else None, author=who.author if who else None,
            added_on=who.date if who else None))
    return out


def _when(e: Expiring) -> str:
    if e.kind == "review":
        if e.days_left < 0:
            return f"due since {e.expires}"
        return f"due on {e.expires} ({e.days_left} day{'s' * (e.days_left != 1)} left)"
    if e.days_left < 0:
        return f"expired on {e.expires}"
    return f"expires on {e.expires} ({e.days_left} day{'s' * (e.days_left != 1)} left)"


def _title(items: list[Expiring], within: int) -> str:
    verb = "expire or are due for review" if any(e.kind == "review" for e in items) else "expire"
    return f"{len(items)} declaration(s) {verb} within {within} days"


def render_markdown(items: list[Expiring], within: int) -> str:
    if not items:
        return f"Nothing expires within {within} days."
    lines = [
        f"### {_title(items, within)}",
        "",
        "| platform | what | when | owners | added by |",
        "|---|---|---|---|---|",
    ]
    for e in items:
        who = f"{e.author} ({e.commit}, {e.added_on})" if e.commit else "uncommitted"
        lines.append(
            f"| {e.platform} | {e.what} | {_when(e)} | {', '.join(e.owners) or '—'} | {who} |"
        )
    lines += [
        "",
        "To keep one, move its `expires` date in a merge request; to let it go, "
        "delete the entry (the next apply removes it anyway). For a review, check the "
        "members and move `reviewed` in a merge request.",
    ]
    return "\n".join(lines)


def render_text(items: list[Expiring], within: int) -> str:
    if not items:
        return f"Nothing expires within {within} days."
    out = [f"{_title(items, within)}:"]
    for e in items:
        who = f", added by {e.author} in {e.commit}" if e.commit else ""
        out.append(
            f"  {e.platform}: {e.what} {_when(e)}; owners "
            f"{', '.join(e.owners) or 'none'}{who} [{e.location}]"
        )
    return "\n".join(out)


def render_json(items: list[Expiring]) -> str:
    return json.dumps([asdict(e) for e in items], ensure_ascii=False, indent=2)


def send_reminders(items: list[Expiring], relay: str, sender: str) -> int:
    """One mail per owner address through the SMTP relay (``host:port``); returns mails sent."""
    by_owner: dict[str, list[Expiring]] = defaultdict(list)
    for e in items:
        for owner in e.owners:
            if "@" in owner:
                by_owner[owner].append(e)
    host, _, port = relay.partition(":")
    with smtplib.SMTP(host, int(port or 25), timeout=30) as smtp:
        for owner, mine in sorted(by_owner.items()):
            msg = EmailMessage()
            msg["From"], msg["To"] = sender, owner
            msg["Subject"] = (f"[Moodle] {len(mine)} échéance(s) : inscriptions de cohorte ou "
                              "revues de cohortes")
            msg.set_content(render_text(mine, max(e.days_left for e in mine)))
            smtp.send_message(msg)
    return len(by_owner)
