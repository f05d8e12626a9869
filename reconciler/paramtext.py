"""What Moodle's ``PARAM_TEXT`` does to a string, and names that survive it unchanged.

Moodle validates every web-service *return value* against the function's declared
structure (``core_external\\external_api::clean_returnvalue``): a ``PARAM_TEXT`` value is
cleaned with ``core\\param::clean_param_value_text`` (``lib/classes/param.php`` in 4.5) and,
when cleaning changes it, ``validate_param`` fails and the whole call answers
``invalidresponse``. That cleaning is PHP's ``strip_tags``, so a cohort name such as
``L1 <Droit>`` or ``Bac <2 ans`` (``<`` followed by a letter or a digit) makes
``local_ws_enrolcohort_get_instances`` fail for its course and for the whole site, after
``add_instance`` has committed (issue 10, finding 1).

This module is the one place that says what "safe" means: :func:`clean_text` mirrors
``PARAM_TEXT`` (``fix_utf8``, the two multilang branches, ``strip_tags``) and
:func:`strip_tags` mirrors PHP 8's ``php_strip_tags_ex`` (``ext/standard/string.c``); a
string is safe when :func:`clean_text` leaves it as it is. :func:`safe_text` turns any
string into a safe one that reads the same.
"""

from __future__ import annotations

import re

__all__ = ["clean_text", "is_safe_text", "markup_problem", "safe_text", "strip_tags"]

# C's isspace() in the "C" locale: what php_strip_tags_ex tests after a '<'.
_C_SPACE = frozenset(" \t\n\v\f\r")
# fix_utf8(): "\0" and the UTF-8 of U+FFFE / U+FFFF are removed; invalid sequences dropped
# by iconv (a Python str can only hold lone surrogates, which UTF-8 cannot encode).
_FIX_UTF8 = re.compile("[\x00\ufffe\uffff\ud800-\udfff]")
# PARAM_TEXT's multilang checks: preg_match_all('/<.*>/suU') and the accepted open tags.
_ANY_TAG = re.compile(r"<.*?>", re.DOTALL)
_LANG_OPEN = re.compile(r'^<lang lang="[a-zA-Z0-9_-]+"\s*>$')
_SPAN_OPEN = re.compile(r'^<span(\s+lang="[a-zA-Z0-9_-]+"|\s+class="multilang"){2}\s*>$')
# What safe_text puts in place of angle brackets: the single guillemets read the same.
_SAFE_BRACKETS = str.maketrans({"<": "\u2039", ">": "\u203a"})


def _tag_allowed(tag: str, allowed: str) -> bool:
    """PHP's ``php_tag_find``: normalise ``<a href=..>``/``</a>`` to ``<a>``, look it up."""
    if not tag:
        return False
    norm = []
    state = 0
    for i, ch in enumerate(_ascii_lower(tag)):
        if ch == "<":
            norm.append(ch)
        elif ch == ">":
            break
        elif ch not in _C_SPACE:
            state = 1
            before = tag[i - 1] if i else ""
            after = tag[i + 1] if i + 1 < len(tag) else ""
            if ch != "/" or (before != "<" and after != ">"):
                norm.append(ch)
        elif state == 1:
            break
    return "".join(norm) + ">" in allowed


def _ascii_lower(text: str) -> str:
    return "".join(c.lower() if c.isascii() else c for c in text)


def strip_tags(text: str, allowed: str = "") -> str:
    """PHP 8's ``strip_tags($text, $allowed)`` on a Python string.

    ``allowed`` is PHP's string form (``"<lang>"``). Mirrors ``php_strip_tags_ex`` of
    ``ext/standard/string.c`` (PHP 8.2, ``allow_tag_spaces`` false) state by state: 0 text,
    1 inside a tag, 2 inside ``<?`` … ``?>``, 3 inside ``<!`` …, 4 inside ``<!--`` … ``-->``.
    PHP works on bytes; no byte of a multi-byte UTF-8 character is ASCII, so walking code
    points gives the same result. Returns the stripped text; never raises.
    """
    allowed = _ascii_lower(allowed)
    out: list[str] = []
    tbuf: list[str] = []
    state = depth = br = 0
    in_q = ""
    lc = ""
    is_xml = False
    n = len(text)

    def at(i: int) -> str:
        return text[i] if 0 <= i < n else "\0"

    i = 0
    while i < n:
        c = text[i]
        if state == 0:
            if c == "\0":
                pass
            elif c == "<":
                if in_q:
                    pass
                elif at(i + 1) in _C_SPACE:
                    out.append(c)
                else:
                    lc = "<"
                    state = 1
                    if allowed:
                        tbuf.append("<")
            elif c == ">":
                if depth:
                    depth -= 1
                elif not in_q:
                    out.append(c)
            else:
                out.append(c)
        elif state == 1:
            if c == "\0":
                pass
            elif c == "<":
                if in_q:
                    pass
                elif at(i + 1) in _C_SPACE:
                    if allowed:
                        tbuf.append(c)
                else:
                    depth += 1
            elif c == ">":
                if depth:
                    depth -= 1
                elif not in_q:
                    lc = ">"
                    if not (is_xml and at(i - 1) == "-"):
                        in_q, state, is_xml = "", 0, False
                        if allowed:
                            tbuf.append(">")
                            tag = "".join(tbuf)
                            if _tag_allowed(tag, allowed):
                                out.append(tag)
                            tbuf = []
            else:
                if c in "\"'" and i != 0 and (not in_q or c == in_q):
                    in_q = "" if in_q else c
                if c == "!" and at(i - 1) == "<" and i >= 1:
                    state, lc = 3, c
                elif c == "?" and at(i - 1) == "<" and i >= 1:
                    br, state = 0, 2
                elif allowed:
                    tbuf.append(c)
        elif state == 2:
            if c == "(":
                if lc not in ('"', "'"):
                    lc, br = "(", br + 1
            elif c == ")":
                if lc not in ('"', "'"):
                    lc, br = ")", br - 1
            elif c == ">":
                if depth:
                    depth -= 1
                elif not in_q and not br and i >= 1 and lc != '"' and at(i - 1) == "?":
                    in_q, state = "", 0
                    tbuf = []
            elif c in "\"'":
                if i >= 1 and at(i - 1) != "\\":
                    if lc == c:
                        lc = ""
                    elif lc != "\\":
                        lc = c
                    if i != 0 and (not in_q or c == in_q):
                        in_q = "" if in_q else c
            elif c in "lL" and i > 4 and _ascii_lower(text[i - 4:i]) == "<?xm":
                state, is_xml = 1, True  # "<?xml": back to an HTML tag
        elif state == 3:
            if c == ">":
                if depth:
                    depth -= 1
                elif not in_q:
                    in_q, state = "", 0
                    tbuf = []
            elif c in "\"'":
                if i != 0 and at(i - 1) != "\\" and (not in_q or c == in_q):
                    in_q = "" if in_q else c
            elif c == "-":
                if i >= 2 and at(i - 1) == "-" and at(i - 2) == "!":
                    state = 4
            elif c in "eE" and i > 6 and _ascii_lower(text[i - 6:i]) == "doctyp":
                state = 1
        else:  # state 4: a comment, until "-->" outside quotes
            if c == ">" and not in_q and i >= 2 and at(i - 1) == "-" and at(i - 2) == "-":
                in_q, state = "", 0
                tbuf = []
        i += 1
    return "".join(out)


def _multilang_ok(text: str, close: str, opening: re.Pattern[str]) -> bool:
    """The balanced-tags check of one multilang branch of PARAM_TEXT."""
    is_open = False
    for match in _ANY_TAG.findall(text):
        if match == close:
            if not is_open:
                return False
            is_open = False
        elif not opening.match(match):
            return False
        else:
            is_open = True
    return not is_open


def clean_text(text: str) -> str:
    """Moodle 4.5 ``clean_param($text, PARAM_TEXT)`` (``core\\param::clean_param_value_text``).

    Keeps well-formed multilang markup (``<lang lang="fr">…</lang>`` or
    ``<span lang="fr" class="multilang">…</span>``) and strips every other tag with
    :func:`strip_tags`. A lone ``>`` and a ``<`` followed by white space are kept.
    """
    text = _FIX_UTF8.sub("", text)
    for close, opening in (("</lang>", _LANG_OPEN), ("</span>", _SPAN_OPEN)):
        if close in text:
            # The branch keeps its own tags, then returns only if they are balanced; else
            # the text (already stripped of other tags) falls through to strip_tags().
            text = strip_tags(text, close.replace("/", ""))
            if _ANY_TAG.search(text) and _multilang_ok(text, close, opening):
                return text
            break
    return strip_tags(text)


def is_safe_text(text: str) -> bool:
    """True when ``PARAM_TEXT`` leaves ``text`` unchanged: Moodle can return it."""
    return clean_text(text) == text


def safe_text(text: str) -> str:
    """``text`` if it is safe, else the same text with ``<``/``>`` as ``‹``/``›`` and the
    characters ``fix_utf8`` would drop as ``\ufffd``: a string without ``<`` has no tag, so
    the result is always safe, as long as the input, and reads the same (``Bac <2 ans`` ->
    ``Bac ‹2 ans``)."""
    if is_safe_text(text):
        return text
    return _FIX_UTF8.sub("\ufffd", text).translate(_SAFE_BRACKETS)


def markup_problem(text: str) -> str | None:
    """Why Moodle would not return ``text`` as it is (for validation messages), or None."""
    cleaned = clean_text(text)
    if cleaned == text:
        return None
    return (f"Moodle's PARAM_TEXT takes part of it for HTML markup and would turn it into "
            f"{cleaned!r}")
