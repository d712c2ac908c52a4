"""The ``datasource`` section and ``settings.metrics_listen``: validated, with file:line:col errors."""

from __future__ import annotations

import textwrap

import pytest

from qbconsole.config import NOT_USED_YET, ConfigError, check_file, parse_config
from qbconsole.config.model import DatasourceConfig


def parse(text: str, env=None):
    return parse_config(textwrap.dedent(text), "rules.yaml", env=env or {})


def errors_of(text: str, env=None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(text, env)
    return [str(d) for d in caught.value.diagnostics]


def test_prometheus_datasource_section_read_into_its_dataclass():
    config = parse("""
        datasource:
          kind: prometheus
          url: ${PROM_URL}
          bearer_token_env: PROM_TOKEN
          timeout: 5s
          local_sources: true
          alertmanager_url: http://127.0.0.1:9093
          alertmanager_sync_interval: 2s
    """, env={"PROM_URL": "http://127.0.0.1:9090"})
    assert config.datasource == DatasourceConfig(
        kind="prometheus", url="http://127.0.0.1:9090", bearer_token_env="PROM_TOKEN", timeout=5.0,
        local_sources=True, alertmanager_url="http://127.0.0.1:9093", alertmanager_sync_interval=2.0)
    assert config.datasource.remote
    assert "datasource" not in NOT_USED_YET and config.notices == ()
    assert parse("alert_rules: []").datasource == DatasourceConfig()  # local by default
    # an unset optional Alertmanager URL is "none", not an error
    assert parse("datasource: {alertmanager_url: '${AM_URL:-}'}").datasource.alertmanager_url is None


def test_prometheus_datasource_errors_are_located():
    assert errors_of("""
        datasource:
          kind: promethus
    """) == ["rules.yaml:3:9: kind: unknown datasource kind 'promethus'; did you mean 'prometheus'? "
             "(expected one of: local, prometheus)"]
    assert errors_of("""
        datasource:
          kind: prometheus
          timout: 5s
    """) == ["rules.yaml:3:3: a prometheus datasource needs 'url' (the Prometheus server's base URL, "
             "e.g. http://127.0.0.1:9090)",
             "rules.yaml:4:3: unknown key 'timout' in datasource; did you mean 'timeout'?"]
    assert errors_of("""
        datasource:
          url: http://127.0.0.1:9090
    """) == ["rules.yaml:3:3: 'url' applies to kind: prometheus only (add 'kind: prometheus', or remove it)"]
    assert errors_of("""
        datasource: {kind: prometheus, url: "ftp://x", timeout: 0, bearer_token_env: "not a name"}
    """) == ["rules.yaml:2:37: url: expected an http:// or https:// URL, got 'ftp://x'",
             "rules.yaml:2:57: timeout: must be positive, got 0",
             "rules.yaml:2:78: bearer_token_env: invalid environment variable name 'not a name'"]
    assert errors_of("datasource: [prometheus]\n") == [
        "rules.yaml:1:13: expected a mapping for datasource, got list"]


def test_prometheus_datasource_says_recording_rules_are_left_to_prometheus(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(textwrap.dedent("""
        datasource: {kind: prometheus, url: "http://127.0.0.1:9090"}
        recording_rules:
          - {record: "job:up:sum", expr: sum(up)}
        groups:
          - name: g
            rules:
              - {record: "job:up:max", expr: max(up)}
              - {alert: Down, expr: up == 0}
    """))
    config, errors, notices = check_file(path, env={})
    assert errors == []
    assert notices == [f"{path}:2:13: 2 recording rule(s) are not evaluated with a Prometheus datasource: "
                       "Prometheus owns those series, so put the rules in its own rule files"]


def test_prometheus_scrape_settings_metrics_listen():
    assert parse("settings: {metrics_listen: 9465}").settings.metrics_listen == "127.0.0.1:9465"
    assert parse("settings: {metrics_listen: '[::1]:9465'}").settings.metrics_listen == "[::1]:9465"
    settings = parse("settings: {metrics_listen: '0.0.0.0:9465', metrics_token_env: SCRAPE_TOKEN}").settings
    assert (settings.metrics_listen, settings.metrics_token_env) == ("0.0.0.0:9465", "SCRAPE_TOKEN")
    assert parse("alert_rules: []").settings.metrics_listen is None  # off by default
    assert errors_of("settings: {metrics_listen: 70000}") == ["rules.yaml:1:28: metrics_listen: not a port number: 70000"]
    assert errors_of("settings: {metrics_listen: somewhere}") == [
        "rules.yaml:1:28: metrics_listen: expected HOST:PORT, e.g. 127.0.0.1:9465 (port 0 picks a free one)"]
