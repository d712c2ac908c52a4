"""Annotation templates render as Prometheus's Go templates do."""

import pytest

from qbconsole.rules.templates import (
    TemplateError, check, humanize, humanize1024, humanize_duration, humanize_percentage, render,
)


@pytest.mark.parametrize("value,expected", [
    (0, "0"), (1, "1"), (999, "999"), (1000, "1k"), (1234567, "1.235M"), (0.5, "500m"),
    (0.00123, "1.23m"), (2.5e-7, "250n"), (-2000, "-2k"), (float("inf"), "+Inf"), (float("nan"), "NaN"),
])
def test_humanize(value, expected):
    assert humanize(value) == expected


@pytest.mark.parametrize("value,expected", [
    (0, "0s"), (0.5, "500ms"), (1, "1s"), (59.5, "59.5s"), (61, "1m 1s"), (3725, "1h 2m 5s"),
    (90061, "1d 1h 1m 1s"), (-61, "-1m 1s"), (0.000001, "1us"),
])
def test_humanize_duration(value, expected):
    assert humanize_duration(value) == expected


def test_humanize_1024_and_percentage():
    assert humanize1024(2048) == "2ki"
    assert humanize1024(1) == "1"
    assert humanize1024(3 * 1024 ** 3) == "3Gi"
    assert humanize_percentage(0.8512) == "85.12%"


def test_render_labels_value_and_pipelines():
    labels = {"instance": "web-1:9100", "job": "node"}
    text = render("{{ $labels.instance }} at {{ $value | humanizePercentage }}; raw {{ $value }}", labels, 0.25)
    assert text == "web-1:9100 at 25%; raw 0.25"
    assert render('{{ printf "%.2f" $value }}s', {}, 1.23456) == "1.23s"
    assert render("{{ $labels.missing }}|", {}, 1) == "|"
    assert render("{{ $value }}", {}, 3.0) == "3"
    assert render("{{ $value }}", {}, 1e21) == "1e+21"
    assert render("{{ humanizeDuration 3725 }}", {}, 0) == "1h 2m 5s"
    assert render("{{ $labels.job | toUpper }}", labels, 0) == "NODE"


@pytest.mark.parametrize("bad", [
    "{{ .Labels.x }}", "{{ $value | exec }}", "{{ $value | }}", '{{ printf "%d" }}', "{{ range . }}",
])
def test_unsupported_constructs_are_errors(bad):
    with pytest.raises(TemplateError):
        check(bad)
