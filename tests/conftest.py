"""Shared test helpers: run the CLI in-process and capture exit code and output."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
TEST_VIDEOS = REPO / "tests" / "data" / "videos"
CHROMIUM = Path("/usr/bin/chromium")


class CliResult:
    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err

    def __repr__(self):
        return f"CliResult(code={self.code}, err={self.err[-500:]!r})"


@pytest.fixture
def cli(capsys):
    """cli('store', 'info', path) → CliResult(code, stdout, stderr), through rosetta_cli.cli.app.main."""
    from rosetta_cli.cli.app import main

    def run(*args):
        capsys.readouterr()
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)

    return run


@pytest.fixture(scope="module")
def one_torch_thread():
    """Heavy torch tests run single-threaded: the 2 shared cores are faster that way, and results stable."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture
def page_images(tmp_path):
    """page_images(html) → (loaded, total) as strings: the page's own img-check marker after headless
    Chromium renders it (so every <img> really decoded). Skips where Chromium is absent (CI installs it)."""
    if not CHROMIUM.exists():
        pytest.skip("needs /usr/bin/chromium (CI: apt-get install -y chromium)")

    def check(html: Path) -> tuple[str, str]:
        cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--no-first-run", "--disable-sync", "--allow-file-access-from-files",
               f"--user-data-dir={tmp_path / 'chrome-profile'}", "--virtual-time-budget=10000", "--dump-dom",
               Path(html).resolve().as_uri()]
        dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
        m = re.search(r'id="img-check" data-ok="(\d+)" data-total="(\d+)"', dom)
        assert m, dom[-2000:]
        return m.groups()
    return check
