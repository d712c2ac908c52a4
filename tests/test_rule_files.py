"""The rule unit-test files in tests/rules: ours must pass, and the pure-PromQL ones must
pass under the real `promtool test rules` too: the check that our semantics are Prometheus's."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from qbconsole.rules.ruletest import run, run_file

HERE = Path(__file__).parent / "rules"
ALL = sorted(HERE.glob("*_test.yml"))
# Files whose rules are plain Prometheus (no qbconsole extras, no rules.yaml).
PURE = [HERE / "lifecycle_test.yml", HERE / "semantics_test.yml"]


@pytest.mark.parametrize("path", ALL, ids=[p.name for p in ALL])
def test_rule_file_passes_with_qbconsole(path):
    result = run_file(path)
    assert result.error is None, result.error
    assert result.failures == [], "\n".join(map(str, result.failures))
    assert result.tests > 0


def promtool() -> str | None:
    found = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if found is None and os.environ.get("CI"):
        pytest.fail("promtool is missing in CI: .ci/run must install Debian's prometheus package")
    return found


@pytest.mark.parametrize("path", PURE, ids=[p.name for p in PURE])
def test_pure_rule_file_passes_with_promtool_too(path):
    tool = promtool()
    if tool is None:
        pytest.skip("promtool not installed (apt-get install prometheus)")
    proc = subprocess.run([tool, "test", "rules", path.name], cwd=HERE, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_wrong_expectation_fails_in_both(tmp_path):
    """Agreement is only meaningful if both runners can fail: break one expected value."""
    broken = tmp_path / "broken_test.yml"
    text = (HERE / "semantics_test.yml").read_text().replace("value: 0.5", "value: 0.75")
    broken.write_text(text.replace("semantics.rules.yml", str(HERE / "semantics.rules.yml")))
    ok, report = run([str(broken)])
    assert not ok and "0.75" in report
    tool = promtool()
    if tool is not None:
        proc = subprocess.run([tool, "test", "rules", str(broken)], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 1


def test_cli_exit_status(tmp_path):
    from qbconsole.cli import main

    assert main(["rules", "test", str(HERE / "lifecycle_test.yml")]) == 0
    bad = tmp_path / "bad_test.yml"
    bad.write_text("rule_files: [nowhere.yml]\ntests: [{input_series: []}]\n")
    assert main(["rules", "test", str(bad)]) == 1
