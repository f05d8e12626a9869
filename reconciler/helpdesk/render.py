"""``reconcile explain`` and ``reconcile history`` for people (text) and machines (JSON)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any


def render_json(doc: Any) -> str:
    """An explanation (``explain.explain``'s value) or history entries as indented JSON."""
    return json.dumps(doc, ensure_ascii=False, indent=2)


def _why(reason: Mapping[str, Any]) -> str:
    """A reason's text, with its source when the text does not already name it."""
    source = reason.get("source") or ""
    return reason["text"] if not source or source in reason["text"] else (
        f"{reason['text']} ({source})")


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _by(who: Mapping[str, Any] | None, verb: str) -> str:
    if not who:
        return f"{verb}: not committed yet" if verb == "added" else f"{verb}: commit unknown"
    return f"{verb} by {who['author']} in {who['commit']} on {who['date']}"


def _sources(doc: Mapping[str, Any]) -> list[str]:
    src = doc.get("sources")
    if not src:
        return []
    out = ["Directory (LDAP)"]
    directory = src["directory"]
    if src["errors"] and not directory["entries"]:
        out.append("  not read: " + "; ".join(src["errors"]))
    elif not directory["entries"]:
        out.append(f"  no entry holds the username {doc['username']}: no IA can be matched "
                   "to this account")
    for e in directory["entries"]:
        mark = "+" if e["counts"] else "-"
        out.append(f"  {mark} {e['dn']}: usernames {', '.join(e['usernames']) or 'none'}; "
                   f"student numbers {', '.join(e['student_ids']) or 'none'}"
                   + (f"; affiliations {', '.join(e['affiliations'])}" if e["affiliations"]
                      else ""))
        out.append(f"      {e['why']}")
    for n in directory["numbers"]:
        out.append(f"  student number {n['number']}: {n['why']}")
    out += [f"  note: {n}" for n in src["notes"]]
    years = sorted({ia["year"] for ia in src["apogee"]} | {src["academic_year"]})
    out += ["", f"APOGÉE (inscriptions administratives {', '.join(years)})"]
    if any(e.startswith("APOGÉE") for e in src["errors"]):
        out.append("  not read: " + "; ".join(e for e in src["errors"] if e.startswith("APOGÉE")))
    elif "apogee_queries" not in src["reads"]:
        out.append("  not read: the directory gives the student numbers to look for")
    elif not src["apogee"]:
        out.append("  none for this year (or no student number to look for)")
    for ia in src["apogee"]:
        ended = f" on {ia['dat_annul_res_iae']}" if ia["dat_annul_res_iae"] else ""
        year = "" if ia["year"] == src["academic_year"] else f"{ia['year']} "
        out.append(
            f"  {year}{ia['vet']} {ia['lib_web_vet']} (COD_ETU {ia['cod_etu']}): "
            f"IA {ia['eta_iae_label']} (ETA_IAE {ia['eta_iae']}){ended}; "
            f"inscription annuelle {ia['eta_iaa_label']} (ETA_IAA {ia['eta_iaa']}); "
            f"ETA_PMT_IAE {ia['eta_pmt_iae']}, TEM_IAE_PRM {ia['tem_iae_prm']}")
        for name, made in ia["platforms"].items():
            verdict = "member" if made["member"] else "no"
            cohort = made["cohort"] or "?"
            out.append(f"      {name}: {cohort}: {verdict} ({made['why']})")
    return out


def _declarations(section: Mapping[str, Any]) -> list[str]:
    decl = section["declarations"]
    out = ["  Declarations"]
    if not decl["cohorts"] and not decl["syncs"]:
        out.append("    no manual cohort lists this person; no sync of their cohorts")
    for c in decl["cohorts"]:
        expiry = ""
        if c["expires"]:
            expiry = f"; {'expired' if c['expired'] else 'expires'} {c['expires']}"
        if c["listed"]:
            out.append(f"    manual cohort {c['idnumber']} ({c['file']}:{c['line']}): listed, "
                       f"{_by(c['added_by'], 'added')}{expiry}")
        else:
            out.append(f"    manual cohort {c['idnumber']} ({c['file']}): no longer listed, "
                       f"{_by(c['removed_by'], 'removed')}{expiry}")
    for s in decl["syncs"]:
        group = f", group {s['group']!r}" if s["group"] else ""
        expiry = ""
        if s["expires"]:
            expiry = f", {'expired' if s['expired'] else 'expires'} {s['expires']}"
        out.append(f"    sync {s['course']} <- {s['cohort']} as {s['role']} (method {s['method']}"
                   f"{group}{expiry}) at {s['source']}")
    return out


def _moodle(section: Mapping[str, Any]) -> list[str]:
    m = section["moodle"]
    out = ["  Moodle"]
    account = m["account"]
    if account is None:
        out.append("    account: none (no Moodle user with this username)")
    else:
        state = ", suspended" if account["suspended"] else ""
        out.append(f"    account: id {account['id']} (auth {account['auth']}{state})")
    cohorts = ", ".join(f"{c['idnumber'] or c['name']}"
                        + ("" if c["managed"] else " (not the reconciler's)")
                        for c in m["cohorts"])
    out.append(f"    cohorts: {cohorts or 'none'}")
    for c in m["courses"]:
        if c["id"] is None:
            out.append(f"    course {c['shortname']}: does not exist in Moodle")
            continue
        state = "active enrolment" if c["active"] else "no active enrolment"
        if c["roles"]:
            state += f", roles {', '.join(c['roles'])}"
        elif c["active"] and c["through"]:
            state += " through " + ", ".join(c["through"])
        out.append(f"    course {c['shortname']} (id {c['id']}): {state}")
        for i in c["instances"]:
            owner = "reconciler" if i["owned"] else "not the reconciler's"
            status = "enabled" if i["enabled"] else "disabled"
            group = f", group {i['group']!r}" if i["group"] else ""
            out.append(f"      cohort sync {i['id']}: {i['cohort']} as {i['role']}{group} "
                       f"({status}, {owner})")
    if m["other_courses"] is None:
        out.append("    other active enrolments: unknown (the token may not call "
                   "core_enrol_get_users_courses)")
    elif m["other_courses"]:
        out.append(f"    other active enrolments (not the reconciler's business): "
                   f"{', '.join(m['other_courses'])}")
    if not m["plugin_available"]:
        out.append("    the local_ws_enrolcohort plugin is not available: cohort syncs unknown")
    return out


def history_line(e: Mapping[str, Any]) -> str:
    """One change entry: when, where, what, why, from which commit and plan."""
    rollover = f"; rollover {e['rollover']}" if e.get("rollover") else ""
    approved = f"; approved by {e['approved_by']}" if e.get("approved_by") else ""
    courses = f" [courses: {', '.join(e['courses'])}]" if e.get("courses") else ""
    removed = "".join(
        f"; removed from the declarations in {c['commit']} by {c['author']} on {c['date']}"
        for c in list((e.get("removed_in") or {}).values())[:1])
    return (f"{e['time']} {e['platform']} {e['kind']} {e['target']}{courses}: "
            f"{_why(e['reason'])}{removed}{rollover}{approved} "
            f"(commit {str(e.get('commit'))[:12]}, plan {str(e.get('plan'))[:19]})")


def run_line(run: Mapping[str, Any]) -> str:
    """One run entry: when, how it ended, its summary."""
    extra = ""
    if run.get("failsafe"):
        extra = "; tripped: " + ", ".join(
            c["name"] + ("" if c["target"] == "*" else f" [{c['target']}]")
            for c in run["failsafe"])
    if not run.get("sources", {}).get("healthy", True):
        extra += "; sources unhealthy"
    return f"{run['time']} {run['outcome']}: {run['summary']}{extra}"


def _history(section: Mapping[str, Any]) -> list[str]:
    h = section["history"]
    out = ["  History"]
    if not h["entries"]:
        out.append("    no recorded change for this person")
    out += [f"    {history_line(e)}" for e in h["entries"]]
    out.append(f"    last run: {run_line(h['last_run']) if h['last_run'] else 'none recorded'}")
    return out


def _verdict(section: Mapping[str, Any]) -> list[str]:
    v = section["verdict"]
    out = [f"  Verdict: {v['summary']}"]
    for c in v["changes"]:
        symbol = {"add": "+", "change": "~", "remove": "-"}[c["effect"]]
        out.append(f"    {symbol} {c['line']}")
        out.append(f"        why: {_why(c['reason'])}")
        out += [f"        then: {then}" for then in c["courses"]]
    for x in v.get("leaving", []):
        out.append(f"    = kept in {x['cohort']} until the nightly removes them on {x['on']} "
                   f"(grace period; leavers record {x['record']})")
    for b in v["blockers"]:
        label = "not judged" if b["code"] == "sources-unread" else "held"
        out.append(f"    {label} ({b['code']}): {b['text']}")
    out += [f"    note: {n}" for n in v["notes"]]
    return out


def render_text(doc: Mapping[str, Any]) -> str:
    """The explanation for a help desk: sources, then per platform the declarations,
    Moodle, the history and the verdict, then what was read."""
    commit = (doc.get("commit") or "no commit")[:12]
    out = [f"Explain {doc['username']} · academic year {doc['academic_year']} · "
           f"{doc['at']} · commit {commit}", ""]
    src = _sources(doc)
    if src:
        out += [*src, ""]
    for name, section in doc["platforms"].items():
        out.append(f"Platform {name} ({section['title']})")
        if "error" in section:
            out += [f"  not explained: {section['error']}", ""]
            continue
        out += _declarations(section) + _moodle(section) + _history(section) + _verdict(section)
        out.append("")
    reads = doc["reads"]
    out.append(f"Read: {_plural(reads['ldap_searches'], 'LDAP search', 'LDAP searches')}, "
               f"{_plural(reads['apogee_queries'], 'APOGÉE query', 'APOGÉE queries')}, "
               f"{_plural(reads['web_service_calls'], 'web-service call')} in "
               f"{reads['seconds']:.2f} s")
    return "\n".join(out)


def render_history(entries: Iterable[Mapping[str, Any]], what: str) -> str:
    """``reconcile history``: the changes found, oldest first, and the last one's answer."""
    found = list(entries)
    if not found:
        return f"No recorded change {what}."
    lines = [f"{len(found)} recorded change(s) {what}:"] + [f"  {history_line(e)}"
                                                           for e in found]
    last = found[-1]
    verb = {"add": "joined", "remove": "left", "change": "changed"}.get(last.get("effect"), "")
    lines.append(f"Last: {last['time']}, {last['kind']} {last['target']} ({verb}) because "
                 f"{last['reason']['text']}.")
    return "\n".join(lines)
