"""--verbose and --log-file route the `rosetta` logger; stage notes go through it, once each."""

from __future__ import annotations

import logging

import pytest

from rosetta_cli.runtime.progress import SILENT
from rosetta_cli.synthetic.bench_stores import make_stores
from tests.test_cli_stdout import ok, rosetta


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return make_stores(tmp_path_factory.mktemp("logging"), n_ego=12, exo_per_ego=1, n_exo_train=12, n_classes=3,
                       dim=8, frames=2, seed=0)


def test_silent_progress_notes_reach_the_logger():
    got = []
    h = logging.Handler()
    h.emit = got.append
    logger = logging.getLogger("rosetta")
    logger.addHandler(h)
    old = logger.level
    logger.setLevel(logging.INFO)
    try:
        SILENT.note("resuming at step 3")
    finally:
        logger.removeHandler(h)
        logger.setLevel(old)
    assert [(r.levelname, r.getMessage()) for r in got] == [("INFO", "resuming at step 3")]


def test_verbose_shows_the_resolved_command():
    quiet = ok(rosetta("encoders"))
    assert "running:" not in quiet.stderr
    loud = ok(rosetta("--verbose", "encoders"))
    assert "running: rosetta encoders" in loud.stderr
    assert "rosetta encoders finished in" in loud.stderr
    assert loud.stdout == quiet.stdout  # the result is unchanged, on stdout


def test_log_file_gets_notes_debug_and_errors(stores, tmp_path):
    ego, exo = stores
    log = tmp_path / "run.log"
    r = ok(rosetta("--log-file", log, "mine", "--ego", ego, "--exo", exo, "--strategy", "visual",
                   "--out", tmp_path / "pairs.zarr"))
    text = log.read_text()
    assert "index: flat" in r.stderr and r.stderr.count("index: flat") == 1  # a note, shown once
    assert "INFO index: flat" in text  # ... and logged with its level
    assert "DEBUG running: rosetta mine --ego" in text and "rosetta mine finished in" in text
    assert "running:" not in r.stderr  # debug lines go to the file, not the console, without --verbose
    bad = rosetta("--log-file", log, "store", "info", tmp_path / "missing.zarr")
    assert bad.returncode == 2
    assert bad.stderr.count("rosetta: error:") == 1  # not repeated by the log handler
    assert "ERROR error:" in log.read_text() and "missing.zarr" in log.read_text()
