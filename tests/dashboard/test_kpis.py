"""The KPI page: the table of `ivr kpis` and its server-rendered SVG charts."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import redis
from flask import Flask

from ivr.dashboard import charts
from ivr.store import Store
from tests.calls.builders import record_call
from tests.dashboard.conftest import PINNED
from tests.dashboard.test_calls import signed_in

DAY = 86400.0
SVG = "{http://www.w3.org/2000/svg}"


def svgs(html: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg .*?</svg>", html, re.S)]


def bars(svg: ET.Element, css: str) -> list[ET.Element]:
    return [r for r in svg.iter(f"{SVG}rect") if css in r.get("class", "").split()]


def test_kpis_table_and_charts_by_day(dash_app: Flask, connection: redis.Redis) -> None:
    store = Store(connection)
    record_call(store, "CA1", PINNED - DAY, wait=5)  # Tue 1 Dec, answered in 5 s
    record_call(store, "CA2", PINNED - DAY + 60, wait=40)  # answered late
    record_call(store, "CA3", PINNED - DAY + 120, outcome="abandoned")
    record_call(store, "CA4", PINNED - 600, outcome="voicemail", queue="tech")  # Wed 2 Dec
    record_call(store, "CA5", PINNED - 900, wait=2, queue="tech")
    client = signed_in(dash_app)
    html = client.get("/dashboard/kpis?from=2026-11-30&to=2026-12-02").get_data(as_text=True)
    rows = re.findall(r'<tr><th scope="row" dir="auto">([^<]+)</th><td>(\d+)</td>', html)
    assert rows == [("2026-11-30", "0"), ("2026-12-01", "3"), ("2026-12-02", "2")]
    assert "<td>33 %</td>" in html  # 1 Dec: one of three offered answered within 20 s
    stacked, level, answer = svgs(html)
    assert len(bars(stacked, "answered")) == 2 and len(bars(stacked, "abandoned")) == 1
    assert len(bars(stacked, "voicemail")) == 1
    assert [b.findtext(f"{SVG}title") for b in bars(level, "service")] == [
        "2026-12-01: 33 %",
        "2026-12-02: 50 %",
    ]
    target = level.find(f"{SVG}line[@class='target']")
    assert target is not None and target.findtext(f"{SVG}title") == "target 80 %"
    assert len(bars(answer, "p50")) == 2 and len(bars(answer, "p90")) == 2
    by_queue = client.get("/dashboard/kpis?from=2026-12-02&to=2026-12-02&by=queue&threshold=1")
    assert by_queue.status_code == 200 and '<th scope="row" dir="auto">tech</th>' in by_queue.text


def test_kpis_default_period_and_bad_input(dash_app: Flask) -> None:
    client = signed_in(dash_app)
    html = client.get("/dashboard/kpis").get_data(as_text=True)
    assert 'name="from" value="2026-11-26"' in html and 'name="to" value="2026-12-02"' in html
    assert len(svgs(html)) == 3
    refused = ["from=2026-12-05&to=2026-12-01", "from=someday", "by=week", "threshold=-3"]
    refused += ["from=2020-01-01&to=2026-12-01", "from=2026-10-01&to=2026-12-01&by=hour"]
    refused += ["from=9999-12-31&to=9999-12-31"]  # no day after it to end the period
    for query in refused:
        assert client.get(f"/dashboard/kpis?{query}").status_code == 400, query


def test_chart_labels_are_escaped() -> None:
    row = {"key": '<script>alert("x")</script>', "calls": 1, "answered": 1, "voicemail": 0,
           "abandoned": 0, "self_service": 0, "failed": 0, "service_level": 1.0,
           "answer_p50": 3.0, "answer_p90": 3.0}  # fmt: skip
    for chart in (charts.calls_by_outcome, charts.service_level, charts.answer_times):
        markup = str(chart([row]))
        assert "<script>" not in markup and "&lt;script&gt;" in markup
        ET.fromstring(markup)  # well-formed
