"""Report exports (Markdown, HTML, JSON) and the ``qbconsole report`` command."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest

from qbconsole.cli import main
from qbconsole.cli_report import parse_time
from qbconsole.config import parse_config
from qbconsole.report import build_report, render_html, render_json, render_markdown
from test_report import END, NOW, RULES, START, T0, make_store  # noqa: F401


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = tmp_path_factory.mktemp("exports") / "qb.db"
    store = make_store(path, NOW)
    report = build_report(store, parse_config(RULES), START, END, now_ms=NOW)
    store.close()
    return path, report


def test_json_round_trips_with_the_section_keys(seeded):
    _, report = seeded
    data = json.loads(render_json(report))
    assert list(data) == ["range", "system", "application", "business", "user_experience", "slo", "incidents",
                          "recommendations", "previous_period"]
    assert data["system"]["cpu"]["average"]["unit"] == "percent"
    assert data["range"]["from"]["iso"] == "2026-01-01T01:00:00Z"
    assert data == report.to_dict()
    assert "NaN" not in render_json(report) and "Infinity" not in render_json(report)


def test_charts_cover_the_window(seeded):
    _, report = seeded
    charts = report.charts()
    assert list(charts) == ["system.cpu", "system.memory", "application.requests_per_second", "application.p95"]
    for chart in charts.values():
        assert chart["from"] == START and chart["to"] == END and chart["unit"]
        stamps = [t for t, _ in chart["points"]]
        assert stamps == sorted(stamps) and START < stamps[0] and stamps[-1] == END
    cpu = [v for _, v in charts["system.cpu"]["points"]]
    assert min(cpu) >= 40 and max(cpu) <= 82  # means of the seeded CPU values per span
    assert all(v == pytest.approx(0.7777777777777778) for _, v in charts["application.p95"]["points"])


def test_html_is_self_contained_and_well_formed(seeded):
    _, report = seeded
    html = render_html(report)
    for needle in ("http", "src=", "@import", "url(", "<script", "<link", "href="):
        assert needle not in html.lower(), needle
    assert html.startswith("<!DOCTYPE html>")
    root = ET.fromstring(html.split("\n", 1)[1])  # well-formed: every element closed, text escaped
    assert root.tag == "html"
    svgs = root.findall(".//svg")
    assert len(svgs) == 4  # CPU, memory, requests/s, p95
    assert all(svg.find("polyline") is not None for svg in svgs)
    tables = root.findall(".//table")
    assert len(tables) > 10
    headings = [h.text for h in root.iter("h2")]
    assert headings == ["System", "Application", "Business", "User experience", "SLO compliance", "Incidents",
                        "Recommendations", "Compared with the previous period"]

    class Strict(HTMLParser):
        def __init__(self):
            super().__init__()
            self.stack = []

        def handle_starttag(self, tag, attrs):
            if tag not in ("meta",):
                self.stack.append(tag)

        def handle_startendtag(self, tag, attrs):
            pass

        def handle_endtag(self, tag):
            assert self.stack.pop() == tag

    parser = Strict()
    parser.feed(html)
    assert parser.stack == []


def test_html_shows_figures_with_units_and_status_words(seeded):
    _, report = seeded
    html = render_html(report)
    assert report.system["cpu"]["average"].text() in html
    assert "✘ missed" in html and "✔ met" in html  # colour is never the only signal
    assert "778 ms" in html  # the p95 of the seeded histogram
    root = ET.fromstring(html.split("\n", 1)[1])
    assert "increase of http_requests_total" in "".join(root.itertext())  # the name reads as written


def test_markdown_has_every_section_and_table(seeded):
    _, report = seeded
    md = render_markdown(report)
    for heading in ("# QuickBid performance report", "## System", "## Application", "## Business",
                    "## User experience", "## SLO compliance", "## Incidents", "## Recommendations",
                    "## Compared with the previous period"):
        assert f"\n{heading}\n" in f"\n{md}"
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            current.append(len(re.findall(r"(?<!\\)\|", line)))
        elif current:
            tables.append(current)
            current = []
    assert len(tables) > 10
    for widths in tables:  # escaped pipes keep every table rectangular
        assert len(set(widths)) == 1, widths
    assert "| response time p95 | 778 ms |" in md
    assert "1. **[HIGH]**" in md


def test_cli_writes_each_format(seeded, tmp_path):
    path, _ = seeded
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    out = tmp_path / "r.json"
    code = main(["--db", str(path), "--rules", str(rules), "report", "--from", "2026-01-01T01:00:00Z",
                 "--to", str((END) // 1000), "--format", "json", "--out", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert data["range"]["from"]["value"] == START and data["range"]["to"]["value"] == END
    html = tmp_path / "r.html"
    assert main(["--db", str(path), "--rules", str(rules), "report", "--from", "2026-01-01T01:00",
                 "--to", "2026-01-01T02:00", "--format", "html", "--out", str(html)]) == 0
    assert html.read_text().startswith("<!DOCTYPE html>")


def test_cli_markdown_to_stdout_and_last(seeded, tmp_path, capsys):
    path, _ = seeded
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES)
    assert main(["--db", str(path), "--rules", str(rules), "report", "--last", "1h"]) == 0
    assert capsys.readouterr().out.startswith("# QuickBid performance report")


@pytest.mark.parametrize("args, message", [
    (["--from", "2026-01-01T02:00Z", "--to", "2026-01-01T01:00Z"], "--to must be after --from"),
    (["--from", "yesterday", "--to", "2026-01-01T01:00Z"], "not a time"),
    (["--from", "2026-01-01T01:00Z"], "give --last DURATION"),
    (["--last", "1h", "--from", "2026-01-01T01:00Z"], "either --last or --from/--to"),
])
def test_cli_refuses_bad_ranges(seeded, tmp_path, capsys, args, message):
    path, _ = seeded
    assert main(["--db", str(path), "report", *args]) == 1
    assert message in capsys.readouterr().err


def test_cli_does_not_create_a_store(tmp_path, capsys):
    missing = tmp_path / "none.db"
    assert main(["--db", str(missing), "report", "--last", "1h"]) == 1
    assert "no store at" in capsys.readouterr().err and not missing.exists()


def test_parse_time_forms():
    assert parse_time("2026-01-01") == T0
    assert parse_time("2026-01-01T00:00:00Z") == T0
    assert parse_time("2026-01-01T02:00:00+02:00") == T0
    assert parse_time(str(T0 // 1000)) == T0
    assert parse_time("1767225600.5") == T0 + 500
    with pytest.raises(ValueError):
        parse_time("01/01/2026")
