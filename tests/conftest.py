"""Shared fixtures: a temporary working directory and a CLI runner."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m mevreport ARGS`` as a user would, capturing output."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "mevreport", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def browser_available() -> bool:
    try:
        import playwright  # noqa: F401
    except ImportError:
        return False
    return shutil.which(CHROMIUM) is not None or Path(CHROMIUM).exists()


def require_browser() -> None:
    """Skip without a browser, except in CI where the browser tests must run."""
    if not browser_available():
        if os.environ.get("MEVREPORT_REQUIRE_BROWSER"):
            pytest.fail("MEVREPORT_REQUIRE_BROWSER is set but chromium/playwright is missing")
        pytest.skip("needs /usr/bin/chromium and playwright")
