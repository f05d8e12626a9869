"""Owners of the declaration files: who answers for each, written as GitLab understands it.

``owners:`` lists GitLab usernames (``jdupont`` or ``@jdupont``), groups (``@dsi/moodle``) or
mail addresses (a GitLab user's). ``reconcile codeowners`` turns them into ``CODEOWNERS``
entries (``gitlab.codeowners``); the rule ``owner-format`` warns about an owner GitLab could not
read, which ``CODEOWNERS`` then leaves out.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .diagnostics import Diagnostic

if TYPE_CHECKING:
    from .loader import DeclarationSet

_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_USER = re.compile(rf"^@?{_NAME}$")
_GROUP = re.compile(rf"^@{_NAME}(/{_NAME})+$")
_MAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def codeowners_entry(owner: str) -> str | None:
    """How ``owner`` is written in GitLab's ``CODEOWNERS`` (``@user``, ``@group/sub`` or the
    mail address), or None when it is none of them (a name with spaces, a stray ``@``)."""
    owner = owner.strip()
    if _MAIL.match(owner):
        return owner
    if _GROUP.match(owner):
        return owner
    if _USER.match(owner) and not owner.lstrip("@").endswith((".git", ".atom")):
        return owner if owner.startswith("@") else f"@{owner}"
    return None


def owner_rules(decls: DeclarationSet, today: dt.date) -> Iterable[Diagnostic]:
    """``owner-format`` (warning): an owner that is neither a GitLab username or group nor a
    mail address; ``CODEOWNERS`` cannot name them, so nobody is asked to approve for them."""
    for file, owners in sorted(decls.file_owners.items()):
        for owner in owners.owners:
            if codeowners_entry(owner) is None:
                yield Diagnostic(
                    file, owners.line, 1, "warning", "owner-format",
                    f"owner {owner!r} is neither a GitLab username (jdupont), group "
                    "(@dsi/moodle) nor a mail address; CODEOWNERS leaves it out")
