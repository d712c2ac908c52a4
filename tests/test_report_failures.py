"""Reports that cannot be made fail cleanly: a one-line error for a bad datasource, the
Prometheus backend closed when the store cannot be opened, no scratch directory left behind."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import ROOT, free_port
from qbconsole.cli import main
from qbconsole.datasource.prometheus import PrometheusBackend
from qbconsole.report.remote import ScratchStore
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


def _scratch(directory):
    now = 1_800_000_000_000
    return ScratchStore(None, now - 3_600_000, now, now, directory=str(directory))


def test_the_scratch_directory_is_removed_when_its_store_cannot_be_opened(tmp_path, monkeypatch):
    def refuse(cls, path, **kwargs):
        assert path.parent.parent == tmp_path  # inside the scratch directory, made first
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Store, "open", classmethod(refuse))
    with pytest.raises(OSError, match="No space"):
        _scratch(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_the_scratch_store_is_closed_and_removed_when_its_first_write_fails(tmp_path, monkeypatch):
    opened = []
    real_open, real_close = Store.open.__func__, Store.close

    def open_(cls, path, **kwargs):
        opened.append(real_open(cls, path, **kwargs))
        return opened[-1]

    def fail(self, fn):
        raise OSError(5, "Input/output error")

    closed = []

    def close(self):
        closed.append(self)
        real_close(self)

    monkeypatch.setattr(Store, "open", classmethod(open_))
    monkeypatch.setattr(Store, "transaction", fail)
    monkeypatch.setattr(Store, "close", close)
    with pytest.raises(OSError, match="Input/output"):
        _scratch(tmp_path)
    assert len(opened) == 1 and closed == opened
    assert list(tmp_path.iterdir()) == []


def test_a_scratch_store_that_opens_is_removed_on_close(tmp_path):
    scratch = _scratch(tmp_path)
    assert len(list(tmp_path.iterdir())) == 1
    scratch.close()
    assert list(tmp_path.iterdir()) == []


def test_a_file_that_is_not_a_store_is_one_line_of_error_for_every_command(tmp_path):
    db = tmp_path / "notes.txt"
    db.write_bytes(b"this is not a database, it is a text file with enough bytes to look like one " * 100)
    for command in (["alerts", "list"], ["report", "--last", "1h"]):
        done = subprocess.run([sys.executable, "-m", "qbconsole", "--db", str(db), *command],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        assert done.stderr.strip().splitlines() == [
            f"qbconsole: cannot open store {db}: file is not a database (is it a qbconsole store? --db picks another)"]
