"""Bad declaration files through the CLI (issue 12): every kind ends in one line naming the
file, line and column, never a traceback; ``plan`` refuses them the same way.

The helpers come from ``test_validate``: a repository with the test ``platforms.yaml`` and
the given files under ``cohorts/``.
"""

from __future__ import annotations

import os
import re
import stat
import sys

import pytest
from click.testing import CliRunner
from test_validate import GOOD_COHORT, TODAY, diagnostics, make_repo, run

from reconciler.cli import main
from reconciler.cli.errors import DEBUG_HINT

GOOD_SYNC = "course: C1\nsyncs:\n  - cohort: man-a\n    role: student\n    reason: because\n"
COHORT = GOOD_COHORT.replace("man-tuteurs", "man-a")
NEXT = COHORT.count("\n") + 1  # the line of what a test appends to COHORT
LINE = re.compile(r"^cohorts/\S+:\d+:\d+: [a-z-]+: .+$")


def lines_of(out: str) -> list[str]:
    """The diagnostic lines of a text report (the summary line dropped), each checked."""
    lines = out.strip().splitlines()
    assert lines and re.match(r"^\d+ files? checked: ", lines[-1]), out
    for line in lines[:-1]:
        assert LINE.match(line), line
    return lines[:-1]


def only_one(tmp_path, files: dict[str, str | bytes]) -> dict:
    repo = make_repo(tmp_path, files)
    code, out = run(repo)
    assert code == 1, out
    assert "Traceback" not in out and DEBUG_HINT not in out
    lines_of(out)
    diags = diagnostics(repo)
    assert len(diags) == 1, diags
    assert len(diags[0]["message"]) < 300, diags[0]["message"]
    return diags[0]


def plan_line(repo) -> tuple[int, str]:
    result = CliRunner().invoke(
        main, ["--repo", str(repo), "plan", "-p", "ecampus", "--now", f"{TODAY}T02:00:00Z"]
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert DEBUG_HINT not in result.output, result.output
    return result.exit_code, result.output


# -- the kinds of issue 12 ----------------------------------------------------------------


def test_symbolic_link_loop(tmp_path) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT})
    syncs = repo / "cohorts" / "ecampus" / "syncs"
    syncs.mkdir()
    (syncs / "loop.yaml").symlink_to("loop.yaml")
    code, out = run(repo)
    assert code == 1 and "Traceback" not in out, out
    assert lines_of(out) == [
        "cohorts/ecampus/syncs/loop.yaml:1:1: symlink-loop: symbolic link loop "
        "(the link leads back to itself); replace it with the file"
    ]
    code, out = plan_line(repo)
    assert code == 1
    assert out.strip() == (
        "error: the declarations have errors (run `reconcile validate`); nothing planned: "
        "cohorts/ecampus/syncs/loop.yaml:1:1: symlink-loop: symbolic link loop (the link "
        "leads back to itself); replace it with the file"
    )


def test_symbolic_link_loop_given_as_a_path(tmp_path) -> None:
    repo = make_repo(tmp_path, {})
    syncs = repo / "cohorts" / "ecampus" / "syncs"
    syncs.mkdir(parents=True)
    (syncs / "A.yaml").symlink_to("B.yaml")
    (syncs / "B.yaml").symlink_to("A.yaml")
    code, out = run(repo, str(syncs / "A.yaml"))
    assert code == 1 and "Traceback" not in out, out
    assert [line.split(": ")[1] for line in lines_of(out)] == ["symlink-loop"]


@pytest.mark.parametrize("depth", [500, 750, 999])
@pytest.mark.parametrize("kind", ["list", "mapping"])
def test_yaml_nested_hundreds_of_levels(tmp_path, depth: int, kind: str) -> None:
    nested = "[" * depth + "]" * depth if kind == "list" else "{a: " * depth + "1" + "}" * depth
    d = only_one(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + f"description: {nested}\n"})
    assert (d["rule"], d["line"], d["column"]) == ("yaml-depth", NEXT, 14 + 32 * (4 if kind == "mapping" else 1))
    assert "nested more than 32 levels deep" in d["message"]


def test_yaml_nested_a_thousand_levels_stays_a_syntax_error(tmp_path) -> None:
    d = only_one(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + "description: " + "[" * 1000 + "]" * 1000 + "\n"})
    assert (d["rule"], d["line"]) == ("yaml-syntax", NEXT)


@pytest.mark.parametrize(
    "text, message",
    [
        ("!!bool maybe", "!!bool maybe: 'maybe' is not a boolean (write true or false)"),
        ("!!int twelve", "!!int twelve: 'twelve' is not an integer"),
        ("!!float x1", "!!float x1: 'x1' is not a number"),
        ("!!null nothing", "!!null nothing: 'nothing' is not null (write ~ or leave it empty)"),
    ],
)
def test_malformed_standard_tag(tmp_path, text: str, message: str) -> None:
    d = only_one(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + f"extra: {text}\n"})
    assert (d["rule"], d["line"], d["column"], d["message"]) == ("yaml-value", NEXT, 8, message)


@pytest.mark.parametrize("number", ["1" + "0" * 4300, "0x1" + "0" * 5000, "1" + ":10" * 3000])
def test_integer_of_thousands_of_digits(tmp_path, number: str) -> None:
    d = only_one(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + f"expires: {number}\n"})
    assert (d["rule"], d["line"], d["column"]) == ("yaml-number", NEXT, 10)
    assert d["message"].startswith(f"{number[:19]}… ({len(number):,} characters) is read as a number")
    assert d["message"].endswith("if it is text, write it in quotes")


@pytest.mark.parametrize(
    "tag", ["!!python/module:os", "!!python/object/apply:os.system", "!!python/name:builtins.eval"]
)
def test_python_tags_are_refused(tmp_path, tag: str) -> None:
    d = only_one(
        tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + f"description: {tag} ''\n"}
    )
    assert (d["rule"], d["line"], d["column"]) == ("yaml-python-tag", NEXT, 14)
    assert d["message"] == (
        f"{tag} asks YAML to build a Python object: declarations hold plain values only; "
        "remove the tag"
    )


def test_python_tag_on_a_mapping_is_refused_too(tmp_path) -> None:
    d = only_one(
        tmp_path,
        {"ecampus/cohorts/man-a.yaml": COHORT + "description: !!python/object:os.Foo {a: 1}\n"},
    )
    assert (d["rule"], d["line"]) == ("yaml-python-tag", NEXT)


# -- what people typed, in the message ------------------------------------------------------


@pytest.mark.parametrize(
    "typed, read_as",
    [
        ("0012345", "the number 5349 (YAML 1.1 reads a leading 0 as octal)"),
        ("20170412", "the number 20170412"),
        ("12:30", "the number 750 (YAML 1.1 reads digits separated by colons in base 60)"),
        ("yes", "the boolean true"),
        ("off", "the boolean false"),
        ("~", "null (no value)"),
        ("null", "null (no value)"),
        (".inf", "the number infinity"),
        ("1.5e+3", "the number 1500.0"),
        ("0x1F", "the number 31"),
    ],
)
def test_a_value_yaml_turns_into_something_else_is_shown_as_typed(
    tmp_path, typed: str, read_as: str
) -> None:
    cohort = "idnumber: man-a\nname: A\nowners: [x]\nmembers:\n  - alice\n  - " + typed + "\n"
    d = only_one(tmp_path, {"ecampus/cohorts/man-a.yaml": cohort})
    assert (d["rule"], d["line"], d["column"]) == ("schema", 6, 5)
    quoted = "'" + typed + "'"
    assert d["message"] == (
        f"members[1]: {typed} is read as {read_as}, not as text; write it in quotes: {quoted}"
    )


def test_reason_yes_and_a_missing_value(tmp_path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": COHORT,
            "ecampus/syncs/C1.yaml": "course: C1\nsyncs:\n  - cohort: man-a\n    role: student\n"
            "    reason: yes\n  - cohort: man-a\n    role: teacher\n    reason:\n",
        },
    )
    messages = [(d["line"], d["column"], d["message"]) for d in diagnostics(repo)]
    assert messages == [
        (5, 13, "syncs[0].reason: yes is read as the boolean true, not as text; write it in "
                "quotes: 'yes'"),
        (8, 12, "syncs[1].reason: has no value; write the text after the colon"),
    ]


def test_a_date_typed_where_text_is_wanted_stays_text(tmp_path) -> None:
    repo = make_repo(
        tmp_path,
        {"ecampus/cohorts/man-a.yaml": COHORT.replace("name: Tuteurs", "name: 2027-01-31")},
    )
    assert diagnostics(repo) == []


@pytest.mark.parametrize(
    "value, message",
    [
        ('"120"', "expected an integer, got the text '120' (remove the quotes)"),
        ("1e3", "expected an integer, got the text '1e3'"),
        ("twelve", "expected an integer, got the text 'twelve'"),
        ("12.5", "expected an integer, got 12.5"),
        ("[1]", "expected an integer, got a list"),
    ],
)
def test_a_number_setting_shows_what_was_typed(tmp_path, value: str, message: str) -> None:
    from test_validate import PLATFORMS

    repo = make_repo(
        tmp_path, {}, platforms=PLATFORMS.replace("max_temporary_days: 60", f"max_temporary_days: {value}")
    )
    diags = diagnostics(repo)
    assert [(d["line"], d["column"], d["message"]) for d in diags] == [
        (17, 27, f"platforms.prelude.sync_policy.max_temporary_days: {message}")
    ]


def test_a_huge_value_is_cut_in_the_message(tmp_path) -> None:
    d = only_one(
        tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + "visible: " + "x" * 100_000 + "\n"}
    )
    assert d["rule"] == "schema" and d["message"].startswith("visible: expected a boolean, got the text 'xxx")


def test_a_huge_unknown_key_is_cut_in_the_message(tmp_path) -> None:
    d = only_one(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + "k" * 1000 + ": 1\n"})
    assert d["rule"] == "schema" and d["message"].startswith("unknown key 'kkk")


# -- names that do not exist: the closest known ones ---------------------------------------


def test_unknown_role_suggests_the_closest(tmp_path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": COHORT,
            "ecampus/syncs/C1.yaml": GOOD_SYNC.replace("role: student", "role: studnet"),
        },
    )
    (d,) = diagnostics(repo)
    assert d["rule"] == "unknown-role"
    assert d["message"].startswith("unknown role 'studnet' (did you mean student?) (known: ")


def test_unknown_cohort_suggests_the_closest_declared(tmp_path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-tuteurs-l2.yaml": GOOD_COHORT.replace("man-tuteurs", "man-tuteurs-l2"),
            "ecampus/syncs/C1.yaml": GOOD_SYNC.replace("cohort: man-a", "cohort: man-tuteur-l2"),
        },
    )
    (d,) = diagnostics(repo)
    assert d["rule"] == "unknown-cohort"
    assert d["message"].endswith(" (did you mean man-tuteurs-l2?)")


def test_unknown_platform_folder_suggests_the_closest(tmp_path) -> None:
    repo = make_repo(tmp_path, {"ecampsu/cohorts/man-a.yaml": COHORT})
    (d,) = diagnostics(repo)
    assert d["rule"] == "unknown-platform"
    assert "cohorts/platforms.yaml (did you mean ecampus?) (known: " in d["message"]


def test_unknown_key_suggests_the_closest(tmp_path) -> None:
    repo = make_repo(
        tmp_path,
        {"ecampus/syncs/C1.yaml": GOOD_SYNC.replace("    reason", "    expire: 2026-12-01\n    reason")},
    )
    d = next(d for d in diagnostics(repo) if d["rule"] == "schema")
    assert d["message"].startswith("unknown key 'expire' in syncs[0] (did you mean expires?) (allowed: ")


def test_enum_suggests_the_closest(tmp_path) -> None:
    repo = make_repo(
        tmp_path,
        {"ecampus/syncs/C1.yaml": GOOD_SYNC.replace("    reason", "    method: Manual\n    reason")},
    )
    d = next(d for d in diagnostics(repo) if d["rule"] == "schema")
    assert d["message"] == "syncs[0].method: 'Manual' is not one of cohort, manual (did you mean manual?)"


# -- closing the door: kinds nobody listed -------------------------------------------------


@pytest.mark.parametrize(
    "text, rule",
    [
        ("!!binary aGVsbG8=", "yaml-tag"),
        ("!!set {a, b}", "yaml-tag"),
        ("!!omap [{a: 1}]", "yaml-tag"),
        ("!local text", "yaml-tag"),
        ("!<tag:example.com,2000:x> text", "yaml-tag"),
    ],
)
def test_other_tags_are_refused(tmp_path, text: str, rule: str) -> None:
    d = only_one(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + f"description: {text}\n"})
    assert (d["rule"], d["line"], d["column"]) == (rule, NEXT, 14)
    assert "remove the tag" in d["message"]


def test_standard_tags_are_fine(tmp_path) -> None:
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": "idnumber: !!str man-a\nname: !!str 0012\n"
            "owners: !!seq [x]\nvisible: !!bool true\nexpires: !!timestamp 2027-01-31\n"
            "members: [!!str 0012345]\n"
        },
    )
    assert diagnostics(repo) == []


@pytest.mark.parametrize(
    "content, rule, line, column",
    [
        (COHORT.encode() + b"description: a\x00b\n", "yaml-syntax", NEXT, 15),
        (COHORT.encode() + b"description: a\x07b\n", "yaml-syntax", NEXT, 15),
        (COHORT.encode() + b'description: "\xed\xa0\x80"\n', "encoding", NEXT, 15),
        (b"\xef\xbb\xbf" + COHORT.encode() + b"\xef\xbb\xbfdescription: x\n", "encoding", NEXT, 1),
        (COHORT.encode() + b'description: "\\ud800"\n', "yaml-syntax", NEXT, 17),
    ],
)
def test_control_characters_bom_and_surrogates(tmp_path, content: bytes, rule: str, line: int, column: int) -> None:
    d = only_one(tmp_path, {"ecampus/cohorts/man-a.yaml": content})
    assert (d["rule"], d["line"], d["column"]) == (rule, line, column)
    assert "\n" not in d["message"]


def test_bom_and_crlf_are_fine(tmp_path) -> None:
    repo = make_repo(
        tmp_path, {"ecampus/cohorts/man-a.yaml": b"\xef\xbb\xbf" + COHORT.replace("\n", "\r\n").encode()}
    )
    assert diagnostics(repo) == []


def test_a_very_long_line_is_fine(tmp_path) -> None:
    repo = make_repo(
        tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + "description: " + "x" * 500_000 + "\n"}
    )
    assert diagnostics(repo) == []


def test_keys_that_are_not_text(tmp_path) -> None:
    d = only_one(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT + "? [a, b]\n: 1\n"})
    assert (d["rule"], d["line"], d["column"]) == ("yaml-key", NEXT, 3)
    d = only_one(tmp_path / "2", {"ecampus/cohorts/man-a.yaml": COHORT + "1: 2\n"})
    assert d["rule"] == "schema" and d["message"].startswith("unknown key '1'")


def test_a_directory_named_like_a_declaration(tmp_path) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT})
    (repo / "cohorts" / "ecampus" / "syncs" / "C1.yaml").mkdir(parents=True)
    assert [(d["file"], d["rule"]) for d in diagnostics(repo)] == [
        ("cohorts/ecampus/syncs/C1.yaml", "not-a-file")
    ]


def test_a_fifo_is_reported_not_read(tmp_path) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT})
    (repo / "cohorts" / "ecampus" / "syncs").mkdir()
    os.mkfifo(repo / "cohorts" / "ecampus" / "syncs" / "C1.yaml")
    assert [(d["file"], d["rule"]) for d in diagnostics(repo)] == [
        ("cohorts/ecampus/syncs/C1.yaml", "not-a-file")
    ]


@pytest.mark.skipif(sys.platform == "win32" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file_and_folder(tmp_path) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT, "ecampus/syncs/C1.yaml": GOOD_SYNC})
    (repo / "cohorts" / "ecampus" / "cohorts" / "man-a.yaml").chmod(0)
    (repo / "cohorts" / "ecampus" / "syncs").chmod(0)
    try:
        rules = {(d["file"], d["rule"]) for d in diagnostics(repo)}
    finally:
        (repo / "cohorts" / "ecampus" / "syncs").chmod(stat.S_IRWXU)
    assert rules == {
        ("cohorts/ecampus/cohorts/man-a.yaml", "unreadable"),
        ("cohorts/ecampus/syncs", "unreadable"),
    }


def test_an_unreadable_folder_is_an_error_not_an_empty_folder(tmp_path, monkeypatch) -> None:
    """As root permissions cannot hide a folder: make listing it fail instead."""
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT, "ecampus/syncs/C1.yaml": GOOD_SYNC})
    real_scandir = os.scandir
    hidden = str(repo / "cohorts" / "ecampus" / "syncs")

    def scandir(path=None):
        if str(path) == hidden:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    assert [(d["file"], d["rule"]) for d in diagnostics(repo)] == [
        ("cohorts/ecampus/syncs", "unreadable")
    ]


def test_a_file_vanishing_between_listing_and_reading(tmp_path, monkeypatch) -> None:
    from reconciler.declarations import loader

    repo = make_repo(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT, "ecampus/syncs/C1.yaml": GOOD_SYNC})
    real = loader.discover

    def discover(cohorts_dir):
        found = real(cohorts_dir)
        (repo / "cohorts" / "ecampus" / "syncs" / "C1.yaml").unlink()
        return found

    monkeypatch.setattr(loader, "discover", discover)
    assert [(d["file"], d["rule"]) for d in diagnostics(repo)] == [
        ("cohorts/ecampus/syncs/C1.yaml", "unreadable")
    ]


def test_a_name_that_cannot_be_printed_is_escaped(tmp_path) -> None:
    repo = make_repo(tmp_path, {"ecampus/cohorts/man-a.yaml": COHORT})
    bad = os.fsencode(str(repo / "cohorts" / "ecampus" / "cohorts")) + b"/caf\xe9.yaml"
    with open(bad, "wb") as handle:
        handle.write(b"idnumber: man-b\n")
    code, out = run(repo)
    assert code == 1 and "Traceback" not in out
    lines = lines_of(out)
    assert lines and all(
        line.startswith("cohorts/ecampus/cohorts/caf\\udce9.yaml:1:1: ") for line in lines
    ), lines
    assert [d["file"] for d in diagnostics(repo)] == ["cohorts/ecampus/cohorts/caf\\udce9.yaml"] * 3


def test_plan_refuses_an_unknown_role(tmp_path) -> None:
    """An unknown role is a rule of the whole set (lint), not of one file's schema: plan
    met it as a KeyError building the desired state."""
    repo = make_repo(
        tmp_path,
        {
            "ecampus/cohorts/man-a.yaml": COHORT,
            "ecampus/syncs/C1.yaml": GOOD_SYNC.replace("role: student", "role: studnet"),
        },
    )
    code, out = plan_line(repo)
    assert code == 1
    assert out.strip() == (
        "error: the declarations have errors (run `reconcile validate`); nothing planned: "
        "cohorts/ecampus/syncs/C1.yaml:3:5: unknown-role: unknown role 'studnet' (did you "
        "mean student?) (known: editingteacher, manager, student, teacher)"
    )
