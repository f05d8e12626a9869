"""The one vocabulary of general-cohort templates, shared by validation and the builder.

``platforms.yaml`` names general cohorts with Python ``str.format`` templates
(``idnumber_template``, ``name_template``, ``description``, ``context``). :data:`FIELDS` is the
only list of the fields they may use: ``reconcile validate`` (rule ``bad-template``) checks
templates against it by rendering them with the examples, and the cohort builder renders them
with :func:`vet_fields`, which provides exactly these names. The README's table is this list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Formatter


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


FIELDS: tuple[TemplateField, ...] = (
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
FIELD_NAMES: frozenset[str] = frozenset(f.name for f in FIELDS)
EXAMPLES: dict[str, str] = {f.name: f.example for f in FIELDS}

# The template settings of general_cohorts, and the fields each may use.
TEMPLATES: dict[str, frozenset[str]] = {
    "idnumber_template": frozenset(f.name for f in FIELDS if f.in_idnumber),
    "name_template": FIELD_NAMES,
    "description": FIELD_NAMES,
    "context": FIELD_NAMES,
}


def vet_fields(cod_etp: str, cod_vrs_vet: str, cod_cmp: str, lib_web_vet: str, lib_etp: str,
               lic_etp: str, academic_year: str) -> dict[str, str]:
    """The value of every field of :data:`FIELDS` for one VET (strings, as APOGÉE has them)."""
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


def render(template: str, fields: Mapping[str, str], what: str) -> str:
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
        template.format_map(EXAMPLES)
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        return f"{key} cannot be rendered: {exc}"
    return None
