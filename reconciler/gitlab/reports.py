"""Validation results as GitLab report artifacts: Code Quality (shown in the merge request's
widget and on the changed lines) and JUnit (the pipeline's test tab).

Formats as GitLab reads them: Code Quality is a JSON list of CodeClimate issues
(``description``, ``check_name``, ``fingerprint``, ``severity``, ``location.path`` and
``location.lines.begin``); JUnit is the usual ``testsuites/testsuite/testcase`` XML, one test
case a file checked, failed by its errors.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from xml.etree import ElementTree as ET

from ..declarations.diagnostics import Diagnostic

# Code Quality severities: info, minor, major, critical, blocker.
SEVERITY = {"error": "major", "warning": "minor"}


def code_quality(diagnostics: list[Diagnostic]) -> str:
    """The diagnostics as a GitLab Code Quality report (JSON text).

    The fingerprint identifies an issue across pipelines (file, rule and message, not the
    line, so that a problem moved by an edit above it is the same problem)."""
    issues = []
    for d in diagnostics:
        key = f"{d.file}\0{d.rule}\0{d.message}"
        issues.append(
            {
                "type": "issue",
                "check_name": d.rule,
                "description": f"{d.rule}: {d.message}",
                "categories": ["Bug Risk" if d.severity == "error" else "Style"],
                "severity": SEVERITY[d.severity],
                "fingerprint": hashlib.sha256(key.encode()).hexdigest(),
                "location": {"path": d.file, "lines": {"begin": d.line}},
            }
        )
    return json.dumps(issues, ensure_ascii=False, indent=2)


def junit(diagnostics: list[Diagnostic], files: list[str]) -> str:
    """The diagnostics as a JUnit XML report: one test case a file, failed by its errors,
    its warnings in ``system-out``."""
    by_file: dict[str, list[Diagnostic]] = defaultdict(list)
    for d in diagnostics:
        by_file[d.file].append(d)
    names = sorted(set(files) | set(by_file))
    failures = sum(any(d.severity == "error" for d in by_file[n]) for n in names)
    suites = ET.Element("testsuites")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="reconcile validate",
        tests=str(len(names)),
        failures=str(failures),
        errors="0",
    )
    for name in names:
        case = ET.SubElement(suite, "testcase", classname="declarations", name=name)
        errors = [d for d in by_file[name] if d.severity == "error"]
        warnings = [d for d in by_file[name] if d.severity == "warning"]
        if errors:
            failure = ET.SubElement(case, "failure", message=errors[0].text(), type=errors[0].rule)
            failure.text = "\n".join(d.text() for d in errors)
        if warnings:
            ET.SubElement(case, "system-out").text = "\n".join(d.text() for d in warnings)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True)
