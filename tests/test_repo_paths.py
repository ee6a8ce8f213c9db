"""Every reference in the repository points inside it: no code, doc or committed record cites a path that
exists on one machine only (a home folder, this checkout's parent, a sibling folder such as ../shared).

Example paths for the user's own data (`/data/ego4d`, `/tmp/demo0`) and system paths (`/proc`, `/usr/bin`)
are not citations and are allowed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# assembled, so this file does not match itself
MACHINE = re.compile("(?<![\\w.])(?:" + "|".join(["/" + "work/", "/" + "home/", "/" + "Users/", "/" + "root/",
                                                    r"\.\./" + "shared", r"\.\./" + "main/", r"\.\./" + "wt/"]) + ")")
TEXT = (".py", ".md", ".sh", ".toml", ".json", ".txt", ".cfg", ".yml", ".yaml", ".html", ".csv")


def tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    return [REPO / f for f in out.splitlines() if f.endswith(TEXT) and (REPO / f).is_file()]


def machine_paths(text: str) -> list[str]:
    return [line.strip()[:120] for line in text.splitlines() if MACHINE.search(line)]


def absolute_strings(record, where: str = ""):
    """(key path, value) of every string in a JSON record that is an absolute path."""
    if isinstance(record, dict):
        for k, v in record.items():
            yield from absolute_strings(v, f"{where}.{k}")
    elif isinstance(record, list):
        for i, v in enumerate(record):
            yield from absolute_strings(v, f"{where}[{i}]")
    elif isinstance(record, str) and record.startswith("/"):
        yield where, record


def test_the_checker_sees_machine_paths():
    """The rule on hand-written cases: the method page once cited by an absolute path, a sibling checkout."""
    assert machine_paths('"""Stage-4 losses (docs: ' + "/" + 'work/shared/METHOD.md)."""')
    assert machine_paths("see " + "../" + "shared/METHOD.md")
    assert not machine_paths("rosetta extract --videos /data/ego4d/ --out /tmp/x.zarr; docs/method.md; ../method.md")
    assert list(absolute_strings({"config": {"out": "/tmp/claims"}})) == [(".config.out", "/tmp/claims")]


def test_no_tracked_file_cites_a_path_outside_the_repo():
    bad = {str(f.relative_to(REPO)): hits for f in tracked() if f != Path(__file__).resolve()
           and (hits := machine_paths(f.read_text(errors="replace")))}
    assert bad == {}


def test_committed_records_hold_no_absolute_path():
    """A result record (docs/**/*.json) names its folders relative to itself: an absolute path is one machine's."""
    bad = {str(f.relative_to(REPO)): list(absolute_strings(json.loads(f.read_text())))
           for f in tracked() if f.suffix == ".json" and f.is_relative_to(REPO / "docs")}
    assert {f: v for f, v in bad.items() if v} == {}
