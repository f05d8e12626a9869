"""Typed settings read from ``cohorts/platforms.yaml`` (already schema-checked).

Every default lives here, once; the JSON Schema describes the same defaults in words.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

DEFAULT_ROLES: dict[str, int] = {"manager": 1, "editingteacher": 3, "teacher": 4, "student": 5}

SyncPolicyName = Literal["allowed", "discouraged", "forbidden"]


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
    general_cohorts: GeneralCohortSettings = field(default_factory=GeneralCohortSettings)
    manual_idnumber_prefix: str = "man-"
    roles: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_ROLES))
    sync_policy: SyncPolicy = field(default_factory=SyncPolicy)
    accounts: AccountSettings = field(default_factory=AccountSettings)
    failsafes: Failsafes = field(default_factory=Failsafes)

    def effective_url(self, environ: dict[str, str] | None = None) -> str:
        """The base URL, overridden by ``<PLATFORM>_URL`` to point at a test site."""
        env = os.environ if environ is None else environ
        return (env.get(self.url_env) or self.url).rstrip("/")

    def token(self, environ: dict[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        return env.get(self.token_env) or None

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
        general = _pick(GeneralCohortSettings, {**gc_doc, **etapes})
        roles = dict(DEFAULT_ROLES)
        roles.update(p.get("roles") or {})
        platforms[name] = PlatformSettings(
            name=name,
            url=p["url"],
            title=p.get("title", name),
            url_env=p.get("url_env", f"{name.upper()}_URL"),
            token_env=p.get("token_env", f"{name.upper()}_TOKEN"),
            general_cohorts=general,
            manual_idnumber_prefix=(p.get("manual_cohorts") or {}).get("idnumber_prefix", "man-"),
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
    )
