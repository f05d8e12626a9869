"""``reconcile new``: declaration files written for people who do not write YAML every day.

Each scaffold is the README's shape with a comment on every key, starts with its schema hint
(``layout.schema_hint``) so that an editor checks it from then on, and writes values through
``yamltext`` (quoting is PyYAML's job). ``reconcile new`` validates what it wrote and takes
it back when it does not pass.

A new sync goes into the course's file: a new file, or one more entry at the end of an
existing file whose last key is ``syncs`` (the usual shape: comments and the rest of the file
are kept as they are). Any other shape is left for a person to edit (``ScaffoldRefused``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import yaml

from ..errors import DeclarationErrors
from . import yamltext
from .layout import schema_hint

COMMENT_COLUMN = 32


class ScaffoldRefused(DeclarationErrors):
    """The scaffold cannot be written as asked (a file exists, an entry is declared
    already, a file whose shape it does not edit); nothing was written."""

    multiline = True  # may carry the entry to add by hand


def _line(key: str, value: str, comment: str) -> str:
    """``key: value`` with its comment aligned on ``COMMENT_COLUMN`` (value as written)."""
    text = f"{key}: {value}"
    return f"{text.ljust(COMMENT_COLUMN - 2)}  # {comment}\n"


def _entry(key: str, value: object, comment: str) -> str:
    """``key: value`` through the emitter (quoting; a list one item a line), its comment
    aligned on the first line."""
    text = yamltext.entry(key, value)
    first, _, rest = text.partition("\n")
    return f"{first.ljust(COMMENT_COLUMN - 2)}  # {comment}\n{rest}"


@dataclass(frozen=True)
class NewCohort:
    """What ``reconcile new cohort`` was told. ``review_every`` (``180d``/``26w``) applies
    when ``expires`` is None; ``reviewed`` is then the day of writing."""

    idnumber: str
    name: str
    owners: tuple[str, ...]
    platform: str
    platform_title: str
    prefix: str
    description: str | None = None
    members: tuple[str, ...] = ()
    expires: dt.date | None = None
    review_every: str = "180d"
    category: str | None = None


def cohort_text(new: NewCohort, today: dt.date) -> str:
    """The whole file ``cohorts/<platform>/cohorts/<idnumber>.yaml`` for ``new``."""
    out = [
        schema_hint("cohort") + "\n",
        yamltext.comment(
            f"Manual cohort of {new.platform_title}, written by `reconcile new cohort` on "
            f"{today.isoformat()}.\nCheck it with `reconcile validate`, then open a merge "
            "request: its pipeline shows the plan."),
        _entry("idnumber", new.idnumber,
               f"equals the file name; starts with {new.prefix}, the managed prefix"),
        _entry("name", new.name, "shown in Moodle"),
    ]
    if new.description:
        out.append(_entry("description", new.description, "plain text, shown in Moodle"))
    if new.category:
        out.append(_entry("category", new.category,
                          "idnumber of the course category holding the cohort"))
    out.append(_entry("owners", list(new.owners),
                      "who answers for it: GitLab usernames or mail addresses"))
    if new.expires is not None:
        out.append(_line("expires", new.expires.isoformat(),
                         "last day in force (Paris); the next apply deletes the cohort"))
    else:
        out.append(yamltext.comment(
            "No end date: the owners check the members every review_every and then move\n"
            "reviewed in a merge request (the plan and the expiry report say when it is due)."))
        out.append(_line("review_every", new.review_every, "days (180d) or weeks (26w)"))
        out.append(_line("reviewed", today.isoformat(), "the day of the last review"))
    out.append(_entry("members", list(new.members), "Moodle usernames, lower case, one a line"))
    return "".join(out)


@dataclass(frozen=True)
class NewSync:
    """What ``reconcile new sync`` was told."""

    course: str
    cohort: str
    role: str
    reason: str
    platform_title: str
    owners: tuple[str, ...] = ()
    expires: dt.date | None = None
    group: str | None = None
    method: str = "cohort"


def sync_item(new: NewSync, today: dt.date, indent: int = 2) -> str:
    """One entry of a ``syncs:`` list, its dash at column ``indent``, with a comment line."""
    item: dict[str, object] = {"cohort": new.cohort, "role": new.role}
    if new.group:
        item["group"] = new.group
    if new.method != "cohort":
        item["method"] = new.method
    if new.expires is not None:
        item["expires"] = new.expires  # a date: written unquoted, YYYY-MM-DD
    item["reason"] = new.reason
    head = f"added by `reconcile new sync` on {today.isoformat()}"
    if new.expires is not None:
        head += "; in force until expires (Paris day)"
    return yamltext.comment(head, indent) + yamltext.list_item(item, indent)


def course_text(new: NewSync, today: dt.date) -> str:
    """The whole file ``cohorts/<platform>/syncs/<course>.yaml`` with ``new`` as its entry."""
    return "".join([
        schema_hint("syncs") + "\n",
        yamltext.comment(
            f"Cohort syncs of course {new.course} on {new.platform_title}, written by "
            f"`reconcile new sync` on {today.isoformat()}.\nEach entry enrols a cohort in the "
            "course with a role; add one with `reconcile new sync`\nor by hand, check with "
            "`reconcile validate`, then open a merge request."),
        _entry("course", new.course, "the course shortname, equals the file name"),
        _entry("owners", list(new.owners),
               "who answers for these syncs and is told before one expires"),
        "syncs:\n",
        sync_item(new, today),
    ])


def append_sync(text: str, new: NewSync, today: dt.date, file: str) -> str:
    """``text`` (an existing course file) with ``new`` appended to its ``syncs`` list.

    Raises ``ScaffoldRefused`` when the file's last key is not a block list ``syncs`` (its
    shape is then a person's to edit) or it already declares this cohort and role."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        raise ScaffoldRefused(f"{file}: not valid YAML (run `reconcile validate`); "
                              "nothing written") from None
    if not isinstance(root, yaml.MappingNode) or not root.value:
        raise ScaffoldRefused(f"{file}: not a course file; nothing written")
    key, value = root.value[-1]
    if key.value != "syncs" or not isinstance(value, yaml.SequenceNode) or value.flow_style \
            or not value.value:
        raise ScaffoldRefused(
            f"{file}: its last key is not a list of syncs; add this entry by hand:\n"
            + sync_item(new, today))
    for item in value.value:
        if isinstance(item, yaml.MappingNode):
            fields = {k.value: v.value for k, v in item.value if isinstance(v, yaml.ScalarNode)}
            if (fields.get("cohort"), fields.get("role")) == (new.cohort, new.role):
                raise ScaffoldRefused(
                    f"{file}:{item.start_mark.line + 1}: already syncs {new.cohort} as "
                    f"{new.role}; edit that entry instead; nothing written")
    indent = max(value.value[0].start_mark.column - 2, 0)
    return text + ("" if text.endswith("\n") else "\n") + sync_item(new, today, indent)
