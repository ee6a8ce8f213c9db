"""scripts/install.sh: its commands, read from --dry-run (nothing is installed), for CI's mode and --cuda."""

from __future__ import annotations

import os
import shlex
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "install.sh"


def dry(*args, env=None) -> list[list[str]]:
    """The commands install.sh would run, each split as the shell would."""
    e = {k: v for k, v in os.environ.items() if not k.startswith("ROSETTA_")}
    e.update(env or {})
    r = subprocess.run(["bash", str(SCRIPT), *args, "--dry-run"], capture_output=True, text=True, env=e, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[-1] == "(dry run: nothing was installed)"
    return [shlex.split(l) for l in lines[:-1]]


def test_ci_mode_is_unchanged(tmp_path):
    venv = tmp_path / "ci-venv"
    py = f"{venv}/bin/python"
    assert dry(str(venv), "--test") == [
        ["python3", "-m", "venv", str(venv)],
        [py, "-m", "pip", "install", "-q", "--upgrade", "pip"],
        [py, "-m", "pip", "install", "-q", "torch==2.13.0"],
        [py, "-m", "pip", "install", "-q", "-e", ".[test]"],
        [py, "-m", "pip", "install", "-q", "--no-deps", "open-clip-torch>=2.24"],
        [py, "-m", "pip", "install", "-q", "ftfy", "regex"],
    ]
    assert not venv.exists()                          # a dry run makes nothing
    assert all("faiss-gpu-cu12>=1.8" not in c for c in dry(str(venv)))


def _pip(cmds, verb):
    return [c[c.index(verb) + 1:] for c in cmds if "pip" in c and verb in c]


@pytest.mark.parametrize("env, index", [({}, "https://download.pytorch.org/whl/cu128"),
                                        ({"ROSETTA_CUDA": "cu126"}, "https://download.pytorch.org/whl/cu126"),
                                        ({"ROSETTA_CUDA": "cu126", "ROSETTA_TORCH_INDEX": "https://mirror/whl"},
                                         "https://mirror/whl")])
def test_cuda_installs_a_cuda_torch_and_faiss_gpu_never_beside_faiss_cpu(env, index):
    cmds = dry("--cuda", env=env)
    installs, uninstalls = _pip(cmds, "install"), _pip(cmds, "uninstall")
    torch = [c for c in installs if "torch==2.13.0" in c]
    assert len(torch) == 1 and torch[0][torch[0].index("--index-url") + 1] == index
    flat = [" ".join(c) for c in cmds]
    gpu = next(i for i, c in enumerate(flat) if "faiss-gpu-cu12>=1.8" in c)
    cpu_out = next(i for i, c in enumerate(flat) if "uninstall" in c and "faiss-cpu" in c)
    editable = next(i for i, c in enumerate(flat) if " -e ." in c)
    assert editable < cpu_out < gpu                   # faiss-cpu (a dependency of -e .) leaves before faiss-gpu
    assert uninstalls == [["-q", "-y", "faiss-cpu"]]
    assert not any("faiss-cpu" in c for c in flat[gpu:])
    check = cmds[-1]
    assert check[1] == "-c" and "torch.cuda.is_available()" in check[2] and "get_device_name" in check[2] \
        and "faiss.get_num_gpus()" in check[2]
    compile(check[2], "<install check>", "exec")     # the printed check is valid Python


def test_help_and_bad_options():
    r = subprocess.run(["bash", str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "--cuda" in r.stdout and "--dry-run" in r.stdout
    r = subprocess.run(["bash", str(SCRIPT), "--cdua", "--dry-run"], capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "--cdua" in r.stderr
