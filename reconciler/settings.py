"""Typed settings read from ``cohorts/platforms.yaml`` (already schema-checked).

Every default lives here, once; the JSON Schema describes the same defaults in words. The
vocabulary of the general-cohort templates lives here too (:data:`TEMPLATE_FIELDS`): both
``reconcile validate`` (``declarations``) and the cohort builder (``sources``) use it, and
this is the module both may import.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from string import Formatter
from typing import Any, Literal

DEFAULT_ROLES: dict[str, int] = {"manager": 1, "editingteacher": 3, "teacher": 4, "student": 5}

SyncPolicyName = Literal["allowed", "discouraged", "forbidden"]
# Which web-service token a command presents (PlatformSettings.token).
TokenUse = Literal["write", "read", "read-only"]


@dataclass(frozen=True)
class LdapSettings:
    url_env: str = "LDAP_URL"
    bind_dn_env: str = "LDAP_BIND_DN"
    password_env: str = "LDAP_BIND_PASSWORD"
    base: str = "ou=people,dc=example,dc=org"
    filter: str = "(eduPersonAffiliation=student)"
    student_id_attr: str = "supannEtuId"
    username_attr: str = "uid"
    firstname_attr: str = "givenName"
    lastname_attr: str = "sn"
    email_attr: str = "mail"
    page_size: int = 500
    timeout_seconds: float = 30.0
    start_tls: bool = False
    ca_file: str | None = None
    validate_certificate: bool = True


@dataclass(frozen=True)
class ApogeeSettings:
    url_env: str = "APOGEE_URL"
    password_env: str = "APOGEE_PASSWORD"
    require_paid_fees: bool = False
    principal_only: bool = False
    timeout_seconds: float = 300.0
    arraysize: int = 5000


@dataclass(frozen=True)
class HealthSettings:
    state_file: str = ".reconciler/source-health.json"
    min_rows_apogee: int = 1
    min_rows_ldap: int = 1
    max_drop_percent: float = 20.0
    min_join_percent: float = 80.0


@dataclass(frozen=True)
class SourcesSettings:
    ldap: LdapSettings = field(default_factory=LdapSettings)
    apogee: ApogeeSettings = field(default_factory=ApogeeSettings)
    health: HealthSettings = field(default_factory=HealthSettings)


# --- The one vocabulary of general-cohort templates ---------------------------------------
# ``idnumber_template``, ``name_template``, ``description`` and ``context`` of
# general_cohorts are ``str.format`` templates. TEMPLATE_FIELDS is the only list of the fields
# they may use: ``reconcile validate`` (rule ``bad-template``) checks templates against it by
# rendering them with the examples, and the cohort builder renders them with ``vet_fields``,
# which provides exactly these names. The README's table is this list.

@dataclass(frozen=True)
class TemplateField:
    """One template field: its name, what it holds (with its APOGÉE source) and an example.

    ``in_idnumber`` is false for labels: a label edited in APOGÉE would change the idnumber,
    and a changed idnumber is a new cohort (and the old one removed).
    """

    name: str
    meaning: str
    example: str
    in_idnumber: bool = True


TEMPLATE_FIELDS: tuple[TemplateField, ...] = (
    TemplateField("cod_etp", "code étape (INS_ADM_ETP.COD_ETP)", "L1HIS"),
    TemplateField("cod_vrs_vet", "version of the étape (INS_ADM_ETP.COD_VRS_VET)", "101"),
    TemplateField("vet", "étape and version, COD_ETP-COD_VRS_VET", "L1HIS-101"),
    TemplateField("cod_anu", "année universitaire: platforms.yaml's academic_year "
                             "(INS_ADM_ETP.COD_ANU)", "2026"),
    TemplateField("academic_year", "the same value as cod_anu, under platforms.yaml's name",
                  "2026"),
    TemplateField("cod_cmp", "composante of the VET's IA (INS_ADM_ETP.COD_CMP; the most "
                             "frequent one if they differ)", "LET"),
    TemplateField("lib_web_vet", "web label of the VET (VERSION_ETAPE.LIB_WEB_VET)",
                  "Licence 1 Histoire", in_idnumber=False),
    TemplateField("lib_etp", "long label of the étape (ETAPE.LIB_ETP)", "Licence 1 Histoire",
                  in_idnumber=False),
    TemplateField("lic_etp", "short label of the étape (ETAPE.LIC_ETP)", "L1 Histoire",
                  in_idnumber=False),
)
TEMPLATE_FIELD_NAMES: frozenset[str] = frozenset(f.name for f in TEMPLATE_FIELDS)
TEMPLATE_EXAMPLES: dict[str, str] = {f.name: f.example for f in TEMPLATE_FIELDS}

# The template settings of general_cohorts, and the fields each may use.
TEMPLATES: dict[str, frozenset[str]] = {
    "idnumber_template": frozenset(f.name for f in TEMPLATE_FIELDS if f.in_idnumber),
    "name_template": TEMPLATE_FIELD_NAMES,
    "description": TEMPLATE_FIELD_NAMES,
    "context": TEMPLATE_FIELD_NAMES,
}


def vet_fields(cod_etp: str, cod_vrs_vet: str, cod_cmp: str, lib_web_vet: str, lib_etp: str,
               lic_etp: str, academic_year: str) -> dict[str, str]:
    """The value of every field of :data:`TEMPLATE_FIELDS` for one VET (strings, as in APOGÉE)."""
    return {
        "cod_etp": cod_etp,
        "cod_vrs_vet": cod_vrs_vet,
        "vet": f"{cod_etp}-{cod_vrs_vet}",
        "cod_anu": academic_year,
        "academic_year": academic_year,
        "cod_cmp": cod_cmp,
        "lib_web_vet": lib_web_vet,
        "lib_etp": lib_etp,
        "lic_etp": lic_etp,
    }


def render_template(template: str, fields: Mapping[str, str], what: str) -> str:
    """``template`` with ``fields`` filled in.

    Raises ValueError naming the setting (``what``) and the known fields when the template
    cannot be rendered (unknown field, bad format specification, lone brace).
    """
    try:
        return template.format_map(fields)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        known = ", ".join(sorted(fields))
        raise ValueError(
            f"{what} {template!r} cannot be rendered ({exc!r}); fields: {known}") from exc


def template_problem(key: str, template: str) -> str | None:
    """Why the template of setting ``key`` (a key of :data:`TEMPLATES`) is refused, or None.

    A template may use only the fields allowed for its key, each by its bare name (no
    attribute or index access); it must render with the examples (format specifications
    included). Literal braces are written ``{{`` and ``}}``.
    """
    allowed = TEMPLATES[key]
    try:
        used = {name for _, name, _, _ in Formatter().parse(template) if name is not None}
    except ValueError as exc:
        return f"{key}: {exc} (write literal braces as {{{{ and }}}})"
    unknown = sorted(used - allowed)
    if unknown:
        shown = ", ".join(repr(u) if not u.isidentifier() else u for u in unknown)
        return (f"{key} uses unknown field(s) {shown} "
                f"(available: {', '.join(sorted(allowed))})")
    try:
        template.format_map(TEMPLATE_EXAMPLES)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        return f"{key} cannot be rendered: {exc}"
    return None


# --- Windows of the general cohorts (issue 17, items 2 and 3) ------------------------------

@dataclass(frozen=True)
class GracePeriod:
    """How long a leaver stays in a general cohort (``general_cohorts.grace_period``).

    ``days``: the platform's grace, 0 (default) removes a leaver on the run that sees them
    gone. ``max_days``: the longest grace a sync may ask for (``grace_days``); by default the
    platform's own ``days``. ``max_gap_days``: the longest time, in days, between two runs
    that saved the leavers record for its dates to still count; after a longer gap every
    grace period restarts (the record cannot vouch for what happened in between).
    """

    days: int = 0
    max_days: int | None = None
    max_gap_days: int = 1

    @property
    def limit(self) -> int:
        """The longest grace, in days, any cohort of the platform may get."""
        return self.days if self.max_days is None else self.max_days


MONTH_DAY = re.compile(r"^(\d{2})-(\d{2})$")


def month_day(text: str, year: int) -> dt.date:
    """``"MM-DD"`` as a date of ``year``; ValueError when it is no date (``02-30``).

    ``02-29`` is refused in every year, so that a window never depends on leap years.
    """
    match = MONTH_DAY.match(text)
    try:
        if not match or match.groups() == ("02", "29"):
            raise ValueError("no such day")
        return dt.date(year, int(match[1]), int(match[2]))
    except ValueError:
        raise ValueError(f"{text!r} is not a day of the year written MM-DD") from None


@dataclass(frozen=True)
class OverlapWindow:
    """The rollover overlap (``general_cohorts.rollover_overlap``): ``start`` and ``until``
    are days ``MM-DD`` (both in force) of the first calendar year of the academic year."""

    start: str
    until: str

    def bounds(self, academic_year: str) -> tuple[dt.date, dt.date]:
        """First and last day in force for ``academic_year`` (``"2026"``: in 2026)."""
        year = int(academic_year)
        return month_day(self.start, year), month_day(self.until, year)

    def in_force(self, academic_year: str, today: dt.date) -> bool:
        """Whether ``today`` (a Europe/Paris date) lies in the window of ``academic_year``."""
        first, last = self.bounds(academic_year)
        return first <= today <= last


def previous_year(academic_year: str) -> str:
    """The année universitaire before ``academic_year`` (``"2026"`` -> ``"2025"``)."""
    return f"{int(academic_year) - 1:04d}"


@dataclass(frozen=True)
class GeneralCohortSettings:
    enabled: bool = False
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    components: tuple[str, ...] = ()
    idnumber_template: str = "etp-{cod_etp}-{cod_vrs_vet}"
    name_template: str = "{lib_web_vet} ({cod_etp}-{cod_vrs_vet})"
    context: str = "system"
    description: str = ""
    grace: GracePeriod = field(default_factory=GracePeriod)
    overlap: OverlapWindow | None = None

    def overlap_in_force(self, academic_year: str, today: dt.date) -> bool:
        """Whether last year's students count too today (a declared window in force)."""
        return self.overlap is not None and self.overlap.in_force(academic_year, today)

    @property
    def idnumber_prefix(self) -> str:
        """Literal text before the first template field: the managed pattern's prefix."""
        return self.idnumber_template.split("{", 1)[0]

    def idnumber_regex(self) -> re.Pattern[str]:
        """A regex matching every idnumber the template can produce."""
        parts = re.split(r"(\{[a-z_]+\})", self.idnumber_template)
        body = "".join(r"[^\s]+?" if p.startswith("{") else re.escape(p) for p in parts)
        return re.compile(f"^{body}$")


@dataclass(frozen=True)
class SyncPolicy:
    cohort_sync: SyncPolicyName = "allowed"
    max_temporary_days: int = 365
    on_removal: Literal["disable", "delete"] = "disable"
    expiry_warning_days: int = 14


@dataclass(frozen=True)
class AccountSettings:
    create: bool = False
    auth: str = "ldap"


@dataclass(frozen=True)
class Failsafes:
    per_cohort_max_removal_percent: float = 20.0
    small_cohort_size: int = 10
    per_cohort_removal_floor: int = 3
    max_memberships_removed: int = 1000
    max_cohorts_deleted_or_emptied: int = 5
    max_syncs_removed: int = 10
    approval_valid_hours: float = 24.0


@dataclass(frozen=True)
class PlatformSettings:
    name: str
    url: str
    title: str = ""
    url_env: str = ""
    token_env: str = ""
    readonly_token_env: str = ""
    general_cohorts: GeneralCohortSettings = field(default_factory=GeneralCohortSettings)
    manual_idnumber_prefix: str = "man-"
    # Days a due review of a manual cohort may wait before ``reconcile validate`` fails.
    review_grace_days: int = 30
    roles: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    sync_policy: SyncPolicy = field(default_factory=SyncPolicy)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    failsafes: Failsafes = field(default_factory=Failsafes)

    def effective_url(self, environ: dict[str, str] | None = None) -> str:
        """The base URL, overridden by ``<PLATFORM>_URL`` to point at a test site."""
        env = os.environ if environ is None else environ
        return (env.get(self.url_env) or self.url).rstrip("/")

    def token(
        self, environ: dict[str, str] | None = None, use: TokenUse = "write"
    ) -> str | None:
        """The web-service token for ``use`` from ``environ`` (default ``os.environ``), or
        None when it is not set. ``write``: ``token_env``. ``read`` (a command that only
        reads): ``readonly_token_env`` when set, else the write token. ``read-only`` (a
        merge request's plan): ``readonly_token_env`` only, never the write token, since
        GitLab's project variables outrank a job's own and a protected write token can be
        visible to a merge-request job."""
        env = os.environ if environ is None else environ
        readonly = env.get(self.readonly_token_env) or None
        if use == "read-only":
            return readonly
        if use == "read" and readonly:
            return readonly
        return env.get(self.token_env) or None

    def token_variable(self, use: TokenUse = "write") -> str:
        """The environment variable ``token(…, use)`` reads first."""
        return self.token_env if use == "write" else self.readonly_token_env

    def is_managed_idnumber(self, idnumber: str) -> bool:
        """Whether a cohort idnumber falls under this platform's managed patterns."""
        if idnumber.startswith(self.manual_idnumber_prefix):
            return True
        gc = self.general_cohorts
        return gc.enabled and bool(gc.idnumber_regex().match(idnumber))


@dataclass(frozen=True)
class Settings:
    academic_year: str
    platforms: dict[str, PlatformSettings]
    sources: SourcesSettings = field(default_factory=SourcesSettings)
    root: Path = Path(".")
    # Who answers for platforms.yaml and for the files that name no owner (CODEOWNERS' *).
    owners: tuple[str, ...] = ()

    def platform(self, name: str) -> PlatformSettings:
        try:
            return self.platforms[name]
        except KeyError:
            known = ", ".join(sorted(self.platforms))
            raise KeyError(f"unknown platform {name!r} (known: {known})") from None


def _pick(cls: type, data: dict[str, Any], **renames: str) -> Any:
    """Build a frozen dataclass from the keys present in ``data`` (defaults for the rest)."""
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = renames.get(key, key)
        kwargs[name] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def settings_from_document(doc: dict[str, Any], root: Path = Path(".")) -> Settings:
    """Turn a schema-valid platforms.yaml document into :class:`Settings`."""
    src = doc.get("sources") or {}
    ldap_doc = dict(src.get("ldap") or {})
    attrs = ldap_doc.pop("attributes", {}) or {}
    ldap = _pick(LdapSettings, {**ldap_doc, **{f"{k}_attr": v for k, v in attrs.items()}})
    apogee = _pick(ApogeeSettings, src.get("apogee") or {})
    health_doc = dict(src.get("health") or {})
    min_rows = health_doc.pop("min_rows", {}) or {}
    health = _pick(
        HealthSettings, {**health_doc, **{f"min_rows_{k}": v for k, v in min_rows.items()}}
    )

    platforms: dict[str, PlatformSettings] = {}
    for name, p in (doc.get("platforms") or {}).items():
        gc_doc = dict(p.get("general_cohorts") or {})
        etapes = gc_doc.pop("etapes", {}) or {}
        grace = _pick(GracePeriod, gc_doc.pop("grace_period", None) or {})
        overlap_doc = gc_doc.pop("rollover_overlap", None)
        overlap = (OverlapWindow(overlap_doc["from"], overlap_doc["until"])
                   if overlap_doc else None)
        general = _pick(GeneralCohortSettings, {**gc_doc, **etapes})
        general = replace(general, grace=grace, overlap=overlap)
        roles = dict(DEFAULT_ROLES)
        roles.update(p.get("roles") or {})
        manual = p.get("manual_cohorts") or {}
        platforms[name] = PlatformSettings(
            name=name,
            url=p["url"],
            title=p.get("title", name),
            url_env=p.get("url_env", f"{name.upper()}_URL"),
            token_env=p.get("token_env", f"{name.upper()}_TOKEN"),
            readonly_token_env=p.get("readonly_token_env", f"{name.upper()}_READONLY_TOKEN"),
            general_cohorts=general,
            manual_idnumber_prefix=manual.get("idnumber_prefix", "man-"),
            review_grace_days=manual.get("review_grace_days", 30),
            roles=roles,
            sync_policy=_pick(SyncPolicy, p.get("sync_policy") or {}),
            accounts=_pick(AccountSettings, p.get("accounts") or {}),
            failsafes=_pick(Failsafes, p.get("failsafes") or {}),
        )
    return Settings(
        academic_year=str(doc["academic_year"]),
        platforms=platforms,
        sources=SourcesSettings(ldap=ldap, apogee=apogee, health=health),
        root=root,
        owners=tuple(doc.get("owners") or ()),
    )
