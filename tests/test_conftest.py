"""tests/conftest.py's rule: with CI=true a skipped test fails the run; elsewhere it is a skip."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def suite_with_a_skip(tmp_path):
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_one.py").write_text(
        "import pytest\n\n\ndef test_runs():\n    assert True\n\n\n"
        "def test_needs_something_absent():\n    pytest.skip('no chromium here')\n")
    return tmp_path


def run(folder, ci):
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci:
        env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)


def test_in_ci_a_skip_fails_the_run(suite_with_a_skip):
    done = run(suite_with_a_skip, ci=True)
    assert done.returncode == 1, done.stdout
    assert "CI=true: 1 test(s) were skipped" in done.stdout


def test_elsewhere_a_skip_is_reported_and_the_run_passes(suite_with_a_skip):
    done = run(suite_with_a_skip, ci=False)
    assert done.returncode == 0, done.stdout
    assert "1 skipped" in done.stdout
