"""Which Moodle web-service functions the client knows, and which of them only read.

Reads are retried on transient failures and carry ``moodlewssettingraw=1``; writes are
never resent unless the client can prove they did not take effect (see ``client``).
"""

from __future__ import annotations

# moodlewssettingraw is a reserved parameter that every function accepts; it changes
# the answer of those that format names/descriptions (courses, categories, groups, cohort
# descriptions, enrolled users' groups). Cohort names and plugin answers are raw anyway.
IS_READ: dict[str, bool] = {
    "core_webservice_get_site_info": True,
    "core_cohort_get_cohorts": True,
    "core_cohort_search_cohorts": True,
    "core_cohort_get_cohort_members": True,
    "core_user_get_users_by_field": True,
    "core_user_get_users": True,
    "core_course_get_courses_by_field": True,
    "core_course_get_courses": True,
    "core_course_get_categories": True,
    "core_enrol_get_course_enrolment_methods": True,
    "core_enrol_get_enrolled_users": True,
    "core_enrol_get_users_courses": True,
    "core_group_get_course_groups": True,
    "core_group_get_groups": True,
    "core_group_get_group_members": True,
    "local_ws_enrolcohort_get_instances": True,
    "core_cohort_create_cohorts": False,
    "core_cohort_update_cohorts": False,
    "core_cohort_delete_cohorts": False,
    "core_cohort_add_cohort_members": False,
    "core_cohort_delete_cohort_members": False,
    "core_user_create_users": False,
    "core_user_update_users": False,
    "core_user_delete_users": False,
    "core_course_create_categories": False,
    "core_course_create_courses": False,
    "enrol_manual_enrol_users": False,
    "enrol_manual_unenrol_users": False,
    "core_group_create_groups": False,
    "core_group_add_group_members": False,
    "core_group_delete_group_members": False,
    "core_group_delete_groups": False,
    "local_ws_enrolcohort_add_instance": False,
    "local_ws_enrolcohort_update_instance": False,
    "local_ws_enrolcohort_delete_instance": False,
}

# Functions the reconciler's core work needs (plugin functions are checked separately).
CORE_FUNCTIONS: tuple[str, ...] = (
    "core_webservice_get_site_info",
    "core_cohort_get_cohorts",
    "core_cohort_create_cohorts",
    "core_cohort_update_cohorts",
    "core_cohort_delete_cohorts",
    "core_cohort_add_cohort_members",
    "core_cohort_delete_cohort_members",
    "core_cohort_get_cohort_members",
    "core_user_get_users_by_field",
)


def is_read(function: str) -> bool:
    """Unknown functions count as writes: never retried after they may have reached Moodle."""
    return IS_READ.get(function, False)
