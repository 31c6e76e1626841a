#!/usr/bin/env python3
"""Reads schemathesis's JUnit report and compares its findings with the committed baseline.

A finding is an operation (`GET /api/alerts`) with a check code (`ST103`). Findings listed in
baseline.json (each with the reason it cannot be fixed in the document) are tolerated; any other
fails the run. Baseline entries that no longer occur are reported so the list shrinks.

Usage: findings.py JUNIT.xml BASELINE.json
Prints a count per check code and exits 1 when there is a finding not in the baseline.
"""

from __future__ import annotations

import collections
import json
import re
import sys
import xml.etree.ElementTree as ET

CODE = re.compile(r"\b(ST\d{3})\b")


def findings(junit_path: str) -> dict[tuple[str, str], str]:
    """(operation, code) -> the first lines of schemathesis's message."""
    found: dict[tuple[str, str], str] = {}
    for case in ET.parse(junit_path).getroot().iter("testcase"):
        operation = case.get("name", "?")
        for failure in list(case.iter("failure")) + list(case.iter("error")):
            text = (failure.get("message") or "") + "\n" + (failure.text or "")
            codes = set(CODE.findall(text))
            if not codes:
                codes = {"error"}
            for code in codes:
                found.setdefault((operation, code), text.strip()[:400])
    return found


def main() -> int:
    junit_path, baseline_path = sys.argv[1], sys.argv[2]
    with open(baseline_path, encoding="utf-8") as f:
        baseline = json.load(f)
    allowed = {(e["operation"], e["check"]) for e in baseline}
    for e in baseline:
        if not e.get("reason"):
            print(f"error: baseline entry without a reason: {e}", file=sys.stderr)
            return 1
    found = findings(junit_path)
    per_code = collections.Counter(code for _, code in found)
    print(f"schemathesis findings: {len(found)} ({', '.join(f'{c}: {n}' for c, n in sorted(per_code.items())) or 'none'})")
    new = sorted(k for k in found if k not in allowed)
    gone = sorted(k for k in allowed if k not in found)
    for op, code in gone:
        print(f"note: baseline entry no longer found; remove it: {op} {code}")
    if new:
        print(f"error: {len(new)} findings not in {baseline_path}:", file=sys.stderr)
        for key in new:
            op, code = key
            first = found[key].splitlines()
            print(f"  {op} {code}: {' | '.join(first[:3])[:300]}", file=sys.stderr)
        return 1
    print(f"schemathesis: no findings beyond the {len(allowed)} of the baseline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
