"""``reconcile sources``: read APOGÉE and the directory, show health and the general cohorts."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import click

from ..declarations.loader import PLATFORMS_FILE, load_platforms
from ..errors import DeclarationErrors, ExitCode
from ..settings import Settings
from ..sources.model import SourceSnapshot
from ..sources.snapshot import read_sources, record_good_run
from .options import DAY


def load_settings(repo: Path) -> Settings:
    """Settings from cohorts/platforms.yaml, schema-checked; a bad file raises
    ``DeclarationErrors`` with its problems."""
    path = repo / "cohorts" / PLATFORMS_FILE
    settings, diags = load_platforms(path, str(path), repo.resolve())
    errors = [d for d in diags if d.severity == "error"]
    if settings is None or errors:
        lines = "; ".join(f"{d.file}:{d.line}: {d.message}" for d in errors)
        raise DeclarationErrors(f"invalid {path} (use --repo?): {lines}")
    return settings


def _sample(item: dict[str, Any]) -> str:
    if not item.get("count"):
        return "0"
    return f"{item['count']} (e.g. {', '.join(item.get('sample', [])[:5])})"


def render_text(snap: SourceSnapshot, disabled: tuple[str, ...] = ()) -> str:
    st = snap.stats
    head = "HEALTHY" if snap.healthy else "UNHEALTHY: every general cohort stays as it is"
    out = [f"Sources for academic year {snap.academic_year}: {head}"]
    apo, ldp = st.get("apogee", {}), st.get("ldap", {})
    if "rows" in apo:
        years = ", ".join(apo.get("open_years") or []) or "?"
        out.append(
            f"  APOGÉE: {apo['rows']} IA rows in {apo.get('seconds', 0):.2f} s "
            f"(APOGÉE's open year: {years})"
        )
    else:
        out.append(f"  APOGÉE: not read ({apo.get('error', 'unknown error')})")
    if "previous_year" in apo:
        last = apo["previous_year"]
        out.append(f"  APOGÉE, year {last['academic_year']} (rollover overlap in force on "
                   f"{', '.join(st.get('overlap', []))}): {last['rows']} IA rows in "
                   f"{last.get('seconds', 0):.2f} s")
    if "entries" in ldp:
        out.append(
            f"  LDAP: {ldp['entries']} entries in {ldp.get('pages', 0)} page(s), "
            f"{ldp.get('seconds', 0):.2f} s"
        )
    else:
        out.append(f"  LDAP: not read ({ldp.get('error', 'unknown error')})")
    for name, item in (st.get("directory") or {}).items():
        if item.get("count"):
            out.append(f"  directory entries {name.replace('_', ' ')}: {_sample(item)}")
    if "account_without_ia" in st:
        out.append(
            f"  directory accounts without IA in {snap.academic_year}: "
            f"{_sample(st['account_without_ia'])}"
        )
    if snap.reasons:
        out.append("Reasons:")
        out.extend(f"  - {r}" for r in snap.reasons)
    if snap.notes:
        out.append("Notes:")
        out.extend(f"  - {n}" for n in snap.notes)
    if snap.healthy:
        for name in snap.general_cohorts:
            p = st["platforms"][name]
            joined = (f"; {p['ia_with_account']} of {p['ia']} IAs find a directory account "
                      f"({100.0 * p['ia_with_account'] / p['ia']:.1f}%)" if p.get("ia") else "")
            out.append(
                f"Platform {name}: {p['cohorts']} general cohorts, {p['members']} members "
                f"({p['memberships']} memberships){joined}; IA without directory account: "
                f"{_sample(p['ia_without_account'])}"
            )
            old = p.get("overlap")
            if old:
                out.append(
                    f"  rollover overlap in force ({st.get('today', '?')}): "
                    f"{old['members']} more members ({old['memberships']} memberships in "
                    f"{old['cohorts']} cohorts) from last year's IAs, not re-registered yet; "
                    f"{old['ia_with_account']} of {old['ia']} of last year's IAs find a "
                    "directory account")
            if p.get("uncertain"):
                out.append(
                    f"  {p['uncertain']} accounts' memberships left as they are "
                    "(their student number is on several accounts)"
                )
        out.extend(f"Platform {name}: general cohorts disabled" for name in disabled)
        out.append(f"Digest: {snap.digest}")
    return "\n".join(out)


def render_json(snap: SourceSnapshot) -> str:
    doc: dict[str, Any] = {
        "academic_year": snap.academic_year,
        "healthy": snap.healthy,
        "reasons": snap.reasons,
        "notes": snap.notes,
        "digest": snap.digest,
        "stats": snap.stats,
        # Cohort data only when it may be acted on.
        "general_cohorts": {
            name: [
                {
                    "idnumber": c.idnumber,
                    "name": c.name,
                    "context": c.context,
                    "cod_etp": c.cod_etp,
                    "cod_vrs_vet": c.cod_vrs_vet,
                    "cod_cmp": c.cod_cmp,
                    "members": len(c.members),
                    "members_from_previous_year": len(c.from_previous_year),
                    "uncertain": len(c.uncertain),
                }
                for c in cohorts
            ]
            for name, cohorts in snap.general_cohorts.items()
        }
        if snap.healthy
        else None,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True)


@click.command("sources")
@click.option(
    "--platform",
    "platforms",
    multiple=True,
    metavar="NAME",
    help="Only this platform (repeatable). Default: every platform.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--record",
    is_flag=True,
    help="When healthy, save the counts as the last good run (the health reference).",
)
@click.option(
    "--today",
    type=DAY,
    help="Read as on this day (Europe/Paris): which rollover overlap windows are in force.",
)
@click.pass_context
def sources(ctx: click.Context, platforms: tuple[str, ...], fmt: str, record: bool,
            today: dt.date | None) -> None:
    """Read APOGÉE and the directory; show source health and the general cohorts.

    Exit 0 when healthy, 4 when a source is unhealthy (general cohorts must stay unchanged).
    """
    repo: Path = (ctx.obj or {}).get("repo", Path("."))
    settings = load_settings(repo)
    for name in platforms:
        if name not in settings.platforms:
            raise click.BadParameter(
                f"unknown platform {name!r} (known: {', '.join(sorted(settings.platforms))})",
                param_hint="--platform",
            )
    snap = read_sources(settings, platforms=platforms or None, today=today)
    disabled = tuple(
        name
        for name in (platforms or sorted(settings.platforms))
        if not settings.platforms[name].general_cohorts.enabled
    )
    click.echo(render_json(snap) if fmt == "json" else render_text(snap, disabled))
    if not snap.healthy:
        ctx.exit(ExitCode.UNHEALTHY)
    if record:
        try:
            state = record_good_run(snap, settings)
        except OSError as exc:
            raise click.ClickException(f"cannot record the last good run: {exc}") from exc
        click.echo(f"Recorded the last good run ({state['recorded_at']}).", err=fmt == "json")
