"""One code style for the repository: ``ruff check`` with ruff.toml passes."""

import importlib.util
import subprocess
import sys

import pytest

ROOT = __file__.rsplit("/tests/", 1)[0]


def test_ruff_check_passes():
    if importlib.util.find_spec("ruff") is None:
        pytest.fail("ruff is not installed (pip install -e '.[test]')")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", ROOT],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_ruff_check_catches_an_undefined_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    return undefined_name\n")
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                           "--config", f"{ROOT}/ruff.toml", str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "F821" in done.stdout
