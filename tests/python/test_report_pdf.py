"""The weekly report's PDF says what its JSON says: the text pypdf extracts from the PDF (an
independent reader, as a person's viewer would be) holds every headline figure of the JSON
for the same window, formatted as the Markdown and HTML show them, in seed 003's order.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta, timezone

import requests
from pypdf import PdfReader

SECTIONS = [
    "Executive summary",
    "Week over week",
    "Incidents",
    "Top endpoints by traffic",
    "Errors by status code",
    "Slowest endpoints",
    "Resources",
    "Recommendations",
]


def count(n: int) -> str:
    return f"{n:,}"


def share(fraction: float) -> str:
    p = fraction * 100
    decimals = 2 if (p != 0 and abs(p) < 1) or 99 < p < 100 else 1
    return f"{p:.{decimals}f} %"


def ms(v: float) -> str:
    return f"{v:.1f} ms" if abs(v) < 100 else f"{count(round(v))} ms"


def test_the_pdf_has_the_json_figures(liftoff):
    records = [
        {"service": "pdf-shop", "method": "GET", "route": "/catalog", "status": 503 if i % 40 == 0 else 200,
         "duration_ms": 20.0 + (i % 50)}
        for i in range(2_000)
    ] + [
        {"service": "pdf-shop", "method": "POST", "route": "/pay", "status": 200, "duration_ms": 900.0}
        for _ in range(300)
    ]
    liftoff.admin("POST", "/api/ingest/requests", json=records, expect=200)
    to = datetime.now(timezone.utc) + timedelta(minutes=1)
    window = {"from": (to - timedelta(days=7)).isoformat(), "to": to.isoformat()}
    headers = {"Authorization": f"Bearer {liftoff.admin_token}"}
    report = requests.get(f"{liftoff.url}/api/reports/weekly", params=window, headers=headers, timeout=30)
    assert report.status_code == 200, report.text
    r = report.json()
    pdf = requests.get(f"{liftoff.url}/api/reports/weekly", params={**window, "format": "pdf"}, headers=headers,
                       timeout=30)
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(pdf.content), strict=True)
    text = "\n".join(page.extract_text() for page in reader.pages)
    flat = re.sub(r"\s+", " ", text)

    week = r["this_week"]
    assert week["requests"] >= 2_300
    expected = [
        count(week["requests"]),
        share(week["error_rate"]),
        ms(week["avg_response_time_ms"]),
        ms(week["p95_ms"]),
        f"Overall health: {r['grade']['grade']}",
    ]
    for e in r["top_endpoints"]:
        expected += [f"{e['method']} {e['endpoint']}", count(e["requests"]), share(e["share"])]
    for s in r["errors_by_status"]:
        expected += [str(s["status"]), count(s["count"])]
    for figure in expected:
        assert figure in flat, f"{figure!r} is not in the PDF text:\n{text}"
    positions = [flat.find(s) for s in SECTIONS]
    assert all(p >= 0 for p in positions), positions
    assert positions == sorted(positions), "seed 003's order"
    assert f"Page 1 of {len(reader.pages)}" in flat
    assert reader.metadata.title == "Weekly health report"
