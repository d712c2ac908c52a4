"""The alert state machine: for, keep_firing_for, hysteresis, no-data policies."""

from qbconsole.rules.alerts import (
    FIRING, PENDING, RESOLVED, RESOLVED_RETENTION_MS, AlertRule, alert_labels, fingerprint, step,
)

S = 1000
RULE = AlertRule("HighCPU", "system_cpu_percent > 80", for_ms=60 * S, labels={"severity": "warning"})


def result(rule, value, **labels):
    full = alert_labels(rule, {"__name__": "system_cpu_percent", **labels})
    return {fingerprint(full): (full, value)}


def run(rule, timeline, *, while_fn=None, no_data_at=()):
    """timeline: list of (t_seconds, results-or-None). Returns states and all transitions."""
    alerts, log = {}, []
    for t, res in timeline:
        still = while_fn(t) if while_fn else None
        alerts, trans = step(rule, alerts, res or {}, t * S, still_while=still, no_data=t in no_data_at)
        log.extend((tr.old, tr.new, tr.ts // S) for tr in trans)
    return alerts, log


def test_labels_drop_name_and_add_rule_labels_and_alertname():
    labels = alert_labels(RULE, {"__name__": "x", "instance": "a", "severity": "info"})
    assert labels == {"instance": "a", "severity": "warning", "alertname": "HighCPU"}


def test_pending_then_firing_after_for():
    res = result(RULE, 90.0, instance="a")
    alerts, log = run(RULE, [(0, res), (30, res), (59, res), (60, res)])
    assert log == [(None, PENDING, 0), (PENDING, FIRING, 60)]
    (alert,) = alerts.values()
    assert alert.state == FIRING and alert.active_at == 0 and alert.fired_at == 60 * S


def test_zero_for_fires_on_first_evaluation():
    rule = AlertRule("X", "x > 1")
    alerts, log = run(rule, [(0, result(rule, 2.0))])
    assert log == [(None, PENDING, 0), (PENDING, FIRING, 0)]


def test_pending_that_clears_goes_away_without_resolving():
    res = result(RULE, 90.0)
    alerts, log = run(RULE, [(0, res), (30, None)])
    assert alerts == {}
    assert log[-1] == (PENDING, "inactive", 30)


def test_firing_resolves_and_is_kept_for_retention_then_dropped():
    rule = AlertRule("X", "x > 1")
    res = result(rule, 2.0)
    alerts, log = run(rule, [(0, res), (10, None)])
    (alert,) = alerts.values()
    assert alert.state == RESOLVED and alert.resolved_at == 10 * S
    later = 10 + RESOLVED_RETENTION_MS // S + 1
    alerts2, _ = step(rule, alerts, {}, later * S)
    assert alerts2 == {}


def test_refiring_after_resolution_is_a_new_episode():
    rule = AlertRule("X", "x > 1", for_ms=10 * S)
    res = result(rule, 2.0)
    alerts, log = run(rule, [(0, res), (10, res), (20, None), (30, res), (40, res)])
    assert log == [(None, PENDING, 0), (PENDING, FIRING, 10), (FIRING, RESOLVED, 20),
                   (RESOLVED, PENDING, 30), (PENDING, FIRING, 40)]
    (alert,) = alerts.values()
    assert alert.active_at == 30 * S and alert.resolved_at is None


def test_keep_firing_for_holds_then_resolves():
    rule = AlertRule("X", "x > 1", keep_firing_for_ms=60 * S)
    res = result(rule, 5.0)
    alerts, log = run(rule, [(0, res), (10, None), (40, None), (69, None), (70, None)])
    assert log == [(None, PENDING, 0), (PENDING, FIRING, 0), (FIRING, RESOLVED, 70)]


def test_keep_firing_for_resets_when_condition_returns():
    rule = AlertRule("X", "x > 1", keep_firing_for_ms=60 * S)
    res = result(rule, 5.0)
    alerts, log = run(rule, [(0, res), (10, None), (50, res), (60, None), (100, None), (120, None)])
    assert log[-1] == (FIRING, RESOLVED, 120)
    assert len(log) == 3


def test_keep_firing_for_does_not_apply_to_pending():
    rule = AlertRule("X", "x > 1", for_ms=60 * S, keep_firing_for_ms=60 * S)
    alerts, log = run(rule, [(0, result(rule, 5.0)), (10, None)])
    assert alerts == {} and log[-1] == (PENDING, "inactive", 10)


def test_hysteresis_keeps_alert_until_recovery_threshold():
    rule = AlertRule("Load", "x > 1000", keep_firing_while="x > 900")
    fp = next(iter(result(rule, 0)))
    values = {0: 1200, 10: 950, 20: 901, 30: 899}
    timeline = [(t, result(rule, v) if v > 1000 else None) for t, v in values.items()]
    alerts, log = run(rule, timeline, while_fn=lambda t: {fp} if values[t] > 900 else set())
    assert log == [(None, PENDING, 0), (PENDING, FIRING, 0), (FIRING, RESOLVED, 30)]


def test_hysteresis_does_not_start_an_alert():
    rule = AlertRule("Load", "x > 1000", keep_firing_while="x > 900")
    fp = next(iter(result(rule, 0)))
    alerts, log = run(rule, [(0, None)], while_fn=lambda t: {fp})
    assert alerts == {} and log == []


def test_no_data_ok_resolves():
    rule = AlertRule("X", "x > 1", no_data="ok")
    alerts, log = run(rule, [(0, result(rule, 5.0)), (10, None)], no_data_at={10})
    assert log[-1] == (FIRING, RESOLVED, 10)


def test_no_data_keep_state_changes_nothing():
    rule = AlertRule("X", "x > 1", no_data="keep_state")
    alerts, log = run(rule, [(0, result(rule, 5.0)), (10, None), (20, None)], no_data_at={10, 20})
    (alert,) = alerts.values()
    assert alert.state == FIRING and log == [(None, PENDING, 0), (PENDING, FIRING, 0)]


def test_no_data_alerting_raises_a_nodata_alert_through_for():
    rule = AlertRule("X", "x > 1", for_ms=20 * S, no_data="alerting", labels={"severity": "critical"})
    alerts, log = run(rule, [(0, None), (10, None), (20, None)], no_data_at={0, 10, 20})
    (alert,) = alerts.values()
    assert alert.labels == {"nodata": "true", "severity": "critical", "alertname": "X"}
    assert alert.state == FIRING and alert.fired_at == 20 * S


def test_no_data_alerting_clears_when_data_returns():
    rule = AlertRule("X", "x > 1", no_data="alerting")
    alerts, log = run(rule, [(0, None), (10, None)], no_data_at={0})
    assert log[-1] == (FIRING, RESOLVED, 10)


def test_value_updates_while_active():
    alerts, _ = run(RULE, [(0, result(RULE, 85.0)), (10, result(RULE, 95.0))])
    assert next(iter(alerts.values())).value == 95.0


def test_independent_label_sets():
    a, b = result(RULE, 90.0, instance="a"), result(RULE, 91.0, instance="b")
    alerts, log = run(RULE, [(0, {**a, **b}), (60, a)])
    states = {al.labels["instance"]: al.state for al in alerts.values()}
    assert states == {"a": FIRING}
