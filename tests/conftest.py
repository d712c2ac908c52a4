"""Fixtures shared by the test files. Plain helpers (polling, loopback servers, child processes)
are in ``helpers.py``; a test file that defines a fixture of the same name uses its own."""

from __future__ import annotations

import pytest

from qbconsole.rules.promql import StoreQuerier
from qbconsole.rules.promql.queriers import CachedStoreQuerier
from qbconsole.store import Store


@pytest.fixture
def store(tmp_path):
    """An empty store in the test's temporary directory (``qb.db``), closed afterwards."""
    s = Store.open(tmp_path / "qb.db")
    yield s
    s.close()


@pytest.fixture
def pair(store):
    """The rules' cached querier and the plain one over ``store`` (their answers must agree)."""
    cached = CachedStoreQuerier(store)
    yield cached, StoreQuerier(store)
    cached.close()
