"""The expansion of course patterns (``planning.patterns``), property-based: whatever the
shortnames, globs, course files and exclusions, a pattern only ever gives its syncs to
courses Moodle has that it matches and nobody left out, never twice, never over a course
file's own entry; an unresolved pattern gives nothing and holds its cohorts."""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciler.planning.patterns import expand_patterns
from reconciler.planning.state import (
    ActualCategory,
    ActualState,
    DesiredPattern,
    DesiredState,
    DesiredSync,
)

ROLES = {"student": 5, "teacher": 4}


def sync(course: str, cohort: str, role: str, pattern: str | None = None) -> DesiredSync:
    return DesiredSync(course=course, cohort=cohort, role=role, roleid=ROLES[role],
                       method="cohort", reason="why", source=f"{course}.yaml:3",
                       pattern=pattern)


shortnames = st.text(alphabet="AB-12", min_size=1, max_size=5)
globs = st.text(alphabet="AB-1*?", min_size=1, max_size=4)
pairs = st.tuples(st.sampled_from(["man-a", "man-b"]), st.sampled_from(sorted(ROLES)))


@st.composite
def worlds(draw: st.DrawFn) -> tuple[DesiredState, ActualState]:
    courses = draw(st.lists(shortnames, min_size=0, max_size=8, unique=True))
    categories = {10: ActualCategory(10, "CAT-A", (10,)), 11: ActualCategory(11, "CAT-B", (10, 11)),
                  12: ActualCategory(12, None, (12,))}
    actual = ActualState(
        courses={c: i + 2 for i, c in enumerate(courses)},
        course_categories={c: draw(st.sampled_from(sorted(categories))) for c in courses},
        categories=categories if draw(st.booleans()) else None,
    )
    desired = DesiredState(platform="p")
    for i in range(draw(st.integers(0, 3))):
        name = f"pat{i}"
        entries = draw(st.lists(pairs, min_size=1, max_size=3, unique=True))
        desired.patterns.append(DesiredPattern(
            name=name, rule="r", source=f"{name}.yaml:5", owners=("o",),
            syncs=tuple(sync(f"label {name}", c, r, name) for c, r in entries),
            shortname=draw(st.none() | globs),
            category=draw(st.none() | st.sampled_from(["CAT-A", "CAT-B", "CAT-NONE"])),
            subcategories=draw(st.booleans()),
            exclude=tuple(draw(st.lists(globs, max_size=2)))))
        if desired.patterns[-1].shortname is None and desired.patterns[-1].category is None:
            desired.patterns[-1] = replace(desired.patterns[-1], shortname="A*")
    for course in courses:
        for cohort, role in draw(st.lists(pairs, max_size=2, unique=True)):
            desired.syncs.append(sync(course, cohort, role))
        if desired.patterns and draw(st.booleans()):
            name = draw(st.sampled_from([p.name for p in desired.patterns]))
            desired.pattern_exclusions.setdefault(course, {})[name] = f"{course}.yaml:4"
    return desired, actual


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_a_pattern_gives_its_syncs_only_where_it_may(world) -> None:
    desired, actual = world
    expanded = expand_patterns(desired, actual)
    own = {s.key for s in desired.syncs}
    keys = [s.key for s in expanded.syncs]
    assert len(keys) == len(set(keys))  # never twice
    assert expanded.syncs[: len(desired.syncs)] == desired.syncs  # course files untouched
    by_name = {p.name: p for p in desired.patterns}
    report = {r["name"]: r for r in expanded.pattern_report}
    for added in expanded.syncs[len(desired.syncs):]:
        pattern = by_name[added.pattern]
        assert added.key not in own  # a course file's entry wins
        assert added.course in actual.courses
        assert pattern.name not in desired.pattern_exclusions.get(added.course, {})
        if pattern.shortname is not None:
            assert fnmatchcase(added.course, pattern.shortname)
        assert not any(fnmatchcase(added.course, g) for g in pattern.exclude)
        assert report[pattern.name]["unresolved"] is None
        assert added.course in report[pattern.name]["courses"]
        assert (added.cohort, added.role) in {(s.cohort, s.role) for s in pattern.syncs}
    for pattern in desired.patterns:
        if report[pattern.name]["unresolved"] is not None:
            assert pattern.category is not None
            assert not any(s.pattern == pattern.name for s in expanded.syncs)
            assert {(s.cohort, s.role) for s in pattern.syncs} <= expanded.held_syncs
    assert expand_patterns(expanded, actual) is expanded  # idempotent


def test_categories_with_and_without_subcategories() -> None:
    actual = ActualState(
        courses={"X1": 2, "X2": 3, "X3": 4},
        course_categories={"X1": 10, "X2": 11, "X3": 12},
        categories={10: ActualCategory(10, "CAT-A", (10,)),
                    11: ActualCategory(11, "CAT-B", (10, 11)),
                    12: ActualCategory(12, "CAT-C", (12,))},
    )

    def matched(subcategories: bool, shortname: str | None = None) -> list[str]:
        desired = DesiredState(platform="p", patterns=[DesiredPattern(
            name="p", rule="r", source="p.yaml:5", owners=(),
            syncs=(sync("label", "man-a", "student", "p"),), shortname=shortname,
            category="CAT-A", subcategories=subcategories)])
        return [s.course for s in expand_patterns(desired, actual).syncs]

    assert matched(False) == ["X1"]
    assert matched(True) == ["X1", "X2"]
    assert matched(True, shortname="X2") == ["X2"]  # both tests hold
