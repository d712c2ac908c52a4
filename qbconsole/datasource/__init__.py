"""Where series come from: the local store, or a Prometheus server (``datasource`` in rules.yaml).

    backend = build_backend(config.datasource)        # None for the local store
    engine = RulesEngine(store, groups, evaluator=backend, record=backend is None)
    series = range_query(backend or store, 'sum(rate(http_requests_total[1m]))',
                         start_ms, end_ms, step_ms)   # charts and reports, either backend
    metrics = PrometheusReader(backend) if backend else store   # the store's read API either way

Both backends answer the same PromQL with the same result shapes, so rules,
charts and reports do not care which one is active.
"""

from __future__ import annotations

from qbconsole.datasource.reader import PrometheusReader
from qbconsole.datasource.results import Series

__all__ = ["PrometheusReader", "Series", "build_backend", "metrics_reader", "range_query"]


def build_backend(datasource, url_override: str | None = None):
    """A :class:`PrometheusBackend` for a prometheus datasource (or ``url_override``,
    the ``--datasource URL`` option), else None: the local store evaluates."""
    if url_override:
        from dataclasses import replace

        from qbconsole.config.model import DatasourceConfig

        datasource = replace(datasource or DatasourceConfig(), kind="prometheus", url=url_override)
    if datasource is None or not datasource.remote:
        return None
    from qbconsole.datasource.prometheus import PrometheusBackend

    return PrometheusBackend.from_config(datasource)


def metrics_reader(store, backend):
    """What charts read series from: a :class:`PrometheusReader` over ``backend`` when there
    is one (a Prometheus datasource), else ``store`` itself (same read methods)."""
    return PrometheusReader(backend) if backend is not None else store


def range_query(source, expr, start_ms: int, end_ms: int, step_ms: int) -> list[Series]:
    """``expr`` evaluated at start, start+step, ... end on ``source``: a Prometheus backend
    (``/api/v1/query_range``) or a :class:`qbconsole.store.Store` (the local evaluator).

    Returns one :class:`Series` per label set, sorted by labels; raises
    PromQLSyntaxError (local) or PromQLEvalError (either) for a bad query.
    """
    if hasattr(source, "query_range"):
        return source.query_range(expr, start_ms, end_ms, step_ms)
    from qbconsole.datasource.local import range_query_store

    return range_query_store(source, expr, start_ms, end_ms, step_ms)


def generator_url(backend, exprs, host: str | None = None):
    """A notifier ``generator_url`` callable: where an alert comes from, as Alertmanager shows it.

    With a Prometheus backend, Prometheus's own form (``<url>/graph?g0.expr=...&g0.tab=1``,
    a working link to the rule's expression); on the local store, a ``qbconsole://``
    URI naming the host and the alert (there is no web page to link to).
    ``exprs`` maps rule names to expressions (a callable or a mapping).
    """
    import socket
    from urllib.parse import quote, urlencode

    lookup = exprs if callable(exprs) else (lambda rule: exprs.get(rule))
    where = host or socket.gethostname()

    def link(alert) -> str:
        expr = lookup(alert.rule)
        if backend is not None and getattr(backend, "url", None) and expr:
            return f"{backend.url}/graph?" + urlencode({"g0.expr": expr, "g0.tab": "1"})
        return f"qbconsole://{quote(where)}/alerts/{alert.id}?" + urlencode({"rule": alert.rule})

    return link
