"""The function registry and what a handler sees of the site."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..config import EmulatorConfig
from ..errors import WSError
from ..formatting import Formatter
from ..params import Single
from ..state import State

CORE_VERSION = "2024100705.01"
PLUGIN_VERSION = "2019042900"
THEME_REV = "1795859918"


@dataclass
class Call:
    """One request as a handler sees it."""

    state: State
    config: EmulatorConfig
    fmt: Formatter
    siteurl: str
    allowed_functions: list[str] = field(default_factory=list)
    # Raised by the dispatcher once the call's changes are committed: what Moodle throws
    # after its transaction (e.g. the message manager's "Message was not sent.").
    after_commit: WSError | None = None

    @property
    def now(self) -> int:
        return self.state.now()

    def picture(self, size: str) -> str:
        return f"{self.siteurl}/theme/image.php/boost/core/{THEME_REV}/u/{size}"


Handler = Callable[[Call, dict[str, Any]], Any]


@dataclass
class WSFunction:
    name: str
    params: Single
    handler: Handler
    version: str = CORE_VERSION
    plugin: bool = False
    # The declared return structure, where it can make Moodle refuse an answer (PARAM_TEXT
    # values): checked after the commit, as external_api::clean_returnvalue does.
    returns: Any = None


REGISTRY: dict[str, WSFunction] = {}


def wsfunction(name: str, params: dict[str, Any], version: str = CORE_VERSION,
               plugin: bool = False, returns: Any = None) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        REGISTRY[name] = WSFunction(name, Single(params), handler, version, plugin, returns)
        return handler

    return register


# The recorded service "cohortsync_reconciler", in the order get_site_info lists it.
SERVICE_ORDER = [
    "core_webservice_get_site_info",
    "core_cohort_create_cohorts",
    "core_cohort_update_cohorts",
    "core_cohort_get_cohorts",
    "core_cohort_search_cohorts",
    "core_cohort_add_cohort_members",
    "core_cohort_get_cohort_members",
    "core_cohort_delete_cohort_members",
    "core_cohort_delete_cohorts",
    "core_user_get_users_by_field",
    "core_user_create_users",
    "core_user_get_users",
    "core_course_get_courses_by_field",
    "core_course_get_courses",
    "core_course_create_courses",
    "core_course_create_categories",
    "core_course_get_categories",
    "core_enrol_get_course_enrolment_methods",
    "core_enrol_get_enrolled_users",
    "core_enrol_get_users_courses",
    "enrol_manual_enrol_users",
    "enrol_manual_unenrol_users",
    "enrol_meta_add_instances",
    "enrol_meta_delete_instances",
    "core_group_get_course_groups",
    "core_group_create_groups",
    "core_group_get_groups",
    "core_group_add_group_members",
    "core_group_get_group_members",
    "core_group_delete_group_members",
    "core_group_delete_groups",
    "core_role_assign_roles",
    "core_role_unassign_roles",
    "core_user_update_users",
    "core_user_delete_users",
    "local_ws_enrolcohort_add_instance",
    "local_ws_enrolcohort_update_instance",
    "local_ws_enrolcohort_delete_instance",
    "local_ws_enrolcohort_get_instances",
]
# The real site's read-only service "cohortsync_reconciler_ro", in get_site_info's order.
READONLY_SERVICE = [
    "core_cohort_get_cohort_members",
    "core_cohort_search_cohorts",
    "core_cohort_get_cohorts",
    "core_course_get_categories",
    "core_course_get_courses",
    "core_course_get_courses_by_field",
    "core_enrol_get_course_enrolment_methods",
    "core_enrol_get_enrolled_users",
    "core_enrol_get_users_courses",
    "core_group_get_course_groups",
    "core_group_get_group_members",
    "core_group_get_groups",
    "core_user_get_users",
    "core_user_get_users_by_field",
    "core_webservice_get_site_info",
    "local_ws_enrolcohort_get_instances",
]
# Functions that exist in Moodle (so they are not "invalidrecord") but are not emulated.
KNOWN_ELSEWHERE = {"core_badges_get_user_badges"}
# Plugins of the standard distribution carry their own version numbers.
COMPONENT_VERSIONS = {"enrol_manual_enrol_users": "2024100700",
                   "enrol_manual_unenrol_users": "2024100700",
                   "enrol_meta_add_instances": "2024100700",
                   "enrol_meta_delete_instances": "2024100700"}


def function_version(name: str) -> str:
    if name in REGISTRY:
        return REGISTRY[name].version
    if name.startswith("local_ws_enrolcohort_"):
        return PLUGIN_VERSION
    return COMPONENT_VERSIONS.get(name, CORE_VERSION)
