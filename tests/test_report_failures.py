"""Reports that cannot be made fail cleanly: a one-line error for a bad datasource, the
Prometheus backend closed when the store cannot be opened."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT, free_port
from qbconsole.cli import main
from qbconsole.datasource.prometheus import PrometheusBackend
from qbconsole.store import Store


def test_a_bad_datasource_url_is_one_line_of_error_not_a_traceback(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "qbconsole", "--db", str(tmp_path / "none.db"), "--rules", str(ROOT / "rules.yaml"),
         "--datasource", "ftp://x", "report", "--last", "1h"],
        capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.returncode == 1  # as for any other user error
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("qbconsole: ") and "'ftp://x'" in lines[0] and "http://" in lines[0]


def test_the_backend_is_closed_when_the_store_cannot_be_opened(tmp_path, monkeypatch, capsys):
    db = tmp_path / "qb.db"
    db.write_bytes(b"")  # there is a store, so the report means to read its incidents
    closed = []
    real_close = PrometheusBackend.close

    def close(self):
        closed.append(self)
        real_close(self)

    def refuse(cls, path, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(PrometheusBackend, "close", close)
    monkeypatch.setattr(Store, "open", classmethod(refuse))
    code = main(["--db", str(db), "--rules", str(ROOT / "rules.yaml"), "--datasource",
                 f"http://127.0.0.1:{free_port()}", "report", "--last", "1h"])
    assert code == 1
    assert f"qbconsole: cannot open store {db}: Permission denied" in capsys.readouterr().err
    assert len(closed) == 1
