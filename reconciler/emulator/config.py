"""Settings of one emulated Moodle site."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass
class EmulatorConfig:
    """What differs between emulated sites. Defaults are the recorded 4.5.5+ site's."""

    token: str = "TOKEN"
    # A second token for the read-only service (the realmoodle bundle's
    # cohortsync_reconciler_ro: READONLY_SERVICE); None = no such token.
    readonly_token: str | None = None
    latency_ms: float = 0.0
    debug: bool = False
    exception_style: str = "4.5"  # "4.5": core\exception\... class names; "4.1": bare names
    # enrol_cohort/unenrolaction: 0 unenrol, 1 keep, 2 suspend, 3 suspend and remove roles
    unenrolaction: int = 0
    max_input_vars: int = 10000
    plugin: bool = True  # local_ws_enrolcohort installed and in the service
    plugin_quirks: bool = True  # v3.3.3 as recorded: status ignored on add
    now: dt.datetime | None = None  # fixed clock; None = real time
    functions: list[str] | None = None  # the token's service; None = every implemented one
    port: int = 0
    host: str = "127.0.0.1"
    webservices_enabled: bool = True  # False: HTTP 403 with an empty body, as server.php does
    siteurl: str | None = None  # base URL shown in answers; None = the served URL
    # The token's user may manage course categories (moodle/category:manage), as the site
    # admin may: core_course_get_categories then gives idnumber, visible, visibleold,
    # timemodified and theme; without it, Moodle leaves those keys out.
    category_manager: bool = True
    # Mail sending fails (SMTP unreachable): a welcome mail owed by enrol_manual_enrol_users
    # (course with a contact) makes it answer "Message was not sent." after its commit.
    mail_fails: bool = False
