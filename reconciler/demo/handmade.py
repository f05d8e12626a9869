"""A platform as people made it by hand, before the reconciler: the seed of a Moodle emulator
(``MoodleEmulator.seed``) for the import and audit tests and their benchmark.

``handmade_platform`` draws, reproducibly:

* cohorts made in the UI: most with the managed prefix but without the reconciler's marker
  (``man-ui-NNNN``, some hidden, some with an HTML description on several lines), some
  outside it (``TUT-NNNN``: another team's naming), a few the older nightly script made
  with the general-cohort template (``etp-HNNNN-101``), one in a course category's context
  (``man-ufr-histoire``), one without an idnumber;
* cohort-sync instances added by hand ("Add method > Cohort sync"): custom names that are
  not the reconciler's, every ninth disabled, every fifth into a group, roles student or
  non-editing teacher, never twice the same (course, cohort, role);
* courses in one category, each with an editing teacher enrolled by hand.
"""

from __future__ import annotations

import random
from typing import Any

CATEGORY = "UFR-HIST"
CATEGORY_COHORT = "man-ufr-histoire"
STUDENT, TEACHER, EDITING_TEACHER = 5, 4, 3


def cohort_idnumber(n: int) -> str:
    """The idnumber of the n-th hand-made cohort (its kind follows n)."""
    match n % 10:
        case 6 | 7:
            return f"TUT-{n:04d}"
        case 8:
            return f"etp-H{n:04d}-101"
        case _:
            return f"man-ui-{n:04d}"


def handmade_platform(
    *,
    cohorts: int = 120,
    instances: int = 200,
    courses: int = 80,
    users: int = 300,
    members: int = 12,
    seed: int = 15,
) -> dict[str, Any]:
    """The emulator seed (categories, courses, users, cohorts, cohort_syncs, enrolments).

    ``members`` is the largest hand-made cohort (each draws 0..members users). Raises
    ValueError when ``instances`` is more than half the (course, cohort, role) slots (the
    draw never repeats one).
    """
    rng = random.Random(seed)
    people = [
        {
            "username": f"u{n:05d}",
            "firstname": f"Prénom{n}",
            "lastname": f"Nom{n % 97:02d}",
            "email": f"u{n:05d}@example.org",
        }
        for n in range(users)
    ]
    teachers = [
        {
            "username": f"prof{n:04d}",
            "firstname": "Enseignant",
            "lastname": f"N{n}",
            "email": f"prof{n:04d}@example.org",
        }
        for n in range(courses)
    ]
    course_list = [
        {"shortname": f"UE-{n:04d}", "fullname": f"Unité {n} & co", "category_idnumber": CATEGORY}
        for n in range(courses)
    ]
    made: list[dict[str, Any]] = []
    for n in range(cohorts):
        idnumber = cohort_idnumber(n)
        item: dict[str, Any] = {
            "idnumber": idnumber,
            "name": f"Cohorte {n}: {'tuteurs' if n % 3 else 'délégués'} L{n % 3 + 1}",
            "members": sorted(
                p["username"] for p in rng.sample(people, rng.randint(0, min(members, users)))
            ),
        }
        if n % 10 == 9:
            item["description"] = f"<p>Faite à la main.</p>\n<p>Groupe {n}</p>"
            item["visible"] = 0
        elif n % 4 == 1:
            item["description"] = f"Cohorte créée dans l'interface ({n})"
        made.append(item)
    made.append(
        {
            "idnumber": CATEGORY_COHORT,
            "name": "Étudiants de l'UFR d'histoire",
            "category_idnumber": CATEGORY,
            "members": [p["username"] for p in people[:3]],
        }
    )
    made.append({"idnumber": "", "name": "Sans idnumber", "members": [people[0]["username"]]})

    syncable = [c["idnumber"] for c in made if c["idnumber"]]
    room = len(course_list) * len(syncable) * 2
    if instances > room // 2:  # drawing keeps a margin so that it ends quickly
        raise ValueError(f"at most {room // 2} distinct instances fit")
    slots: dict[tuple[str, str, int], None] = {}
    while len(slots) < instances:
        slot = (rng.choice(course_list)["shortname"], rng.choice(syncable),
                rng.choice((STUDENT, TEACHER)))
        slots.setdefault(slot, None)
    syncs = []
    for n, (course, cohort, role) in enumerate(slots):
        sync: dict[str, Any] = {
            "course": course,
            "cohort": cohort,
            "roleid": role,
            "name": f"Synchro {cohort}" if n % 3 else "",
            "status": 1 if n % 9 == 4 else 0,
        }
        if n % 5 == 2:
            sync["group"] = f"Groupe {n % 4}"
        syncs.append(sync)
    return {
        "categories": [{"name": "UFR Histoire", "idnumber": CATEGORY}],
        "courses": course_list,
        "users": people + teachers,
        "cohorts": made,
        "cohort_syncs": syncs,
        "enrolments": [
            {"course": c["shortname"], "username": t["username"], "roleid": EDITING_TEACHER}
            for c, t in zip(course_list, teachers, strict=True)
        ],
    }
