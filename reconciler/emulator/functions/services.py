"""Whether each emulated function reads or writes, as its component's ``db/services.php``
declares it (``'type' => 'read'`` or ``'write'``; CONTRACT §3 headings).

``local_ws_enrolcohort`` 1.x declares the non-standard ``get``/``create``/``update``/
``delete`` (CONTRACT §4.2); its 4.0 fork says read/write, which is what is listed here.
The client keeps its own table (``reconciler.moodle.functions``): a test checks that they
agree, since the client retries reads and never blindly resends writes.
"""

from __future__ import annotations

from typing import Literal

FunctionType = Literal["read", "write"]

FUNCTION_TYPES: dict[str, FunctionType] = {
    "core_webservice_get_site_info": "read",
    "core_cohort_create_cohorts": "write",
    "core_cohort_update_cohorts": "write",
    "core_cohort_get_cohorts": "read",
    "core_cohort_search_cohorts": "read",
    "core_cohort_add_cohort_members": "write",
    "core_cohort_get_cohort_members": "read",
    "core_cohort_delete_cohort_members": "write",
    "core_cohort_delete_cohorts": "write",
    "core_user_get_users_by_field": "read",
    "core_user_create_users": "write",
    "core_user_get_users": "read",
    "core_user_update_users": "write",
    "core_user_delete_users": "write",
    "core_course_get_courses_by_field": "read",
    "core_course_get_courses": "read",
    "core_course_create_courses": "write",
    "core_course_create_categories": "write",
    "core_course_get_categories": "read",
    "core_enrol_get_course_enrolment_methods": "read",
    "core_enrol_get_enrolled_users": "read",
    "core_enrol_get_users_courses": "read",
    "enrol_manual_enrol_users": "write",
    "enrol_manual_unenrol_users": "write",
    "enrol_meta_add_instances": "write",
    "enrol_meta_delete_instances": "write",
    "core_group_get_course_groups": "read",
    "core_group_get_groups": "read",
    "core_group_create_groups": "write",
    "core_group_add_group_members": "write",
    "core_group_get_group_members": "read",
    "core_group_delete_group_members": "write",
    "core_group_delete_groups": "write",
    "core_role_assign_roles": "write",
    "core_role_unassign_roles": "write",
    "local_ws_enrolcohort_add_instance": "write",
    "local_ws_enrolcohort_update_instance": "write",
    "local_ws_enrolcohort_delete_instance": "write",
    "local_ws_enrolcohort_get_instances": "read",
}


def is_write(function: str) -> bool:
    """Unknown names count as writes (the safe side for "nothing was written" checks)."""
    return FUNCTION_TYPES.get(function, "write") == "write"
