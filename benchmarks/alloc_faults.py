"""Minor page faults per efficientnet-lite0 forward (one T=4 clip), glibc defaults vs keep_freed_memory().

    python benchmarks/alloc_faults.py [--forwards 5] [--rounds 3]

Each round runs in a fresh child process (a process cannot return to glibc's defaults once mallopt has
changed them): one warm-up pass, `forwards` forwards under glibc's defaults, then keep_freed_memory(), a
warm-up pass, and `forwards` forwards again. Prints faults per forward before/after for each round and
their medians. What it measures is a property of glibc and of the machine's load (on a fresh machine
under two pytest workers, "before" measured 0 once), which is why it is a benchmark and not a test;
tests/test_video_decode.py only checks the parameters rosetta hands to mallopt.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r'''
import resource, sys, torch
sys.path.insert(0, sys.argv[1])
from rosetta_cli.encoders import get_visual_encoder
from rosetta_cli.runtime.alloc import keep_freed_memory
torch.set_num_threads(1)
enc = get_visual_encoder("efficientnet-lite0", device="cpu")
x = torch.randint(0, 256, (4, 224, 224, 3), dtype=torch.uint8)
n = int(sys.argv[2])
def faults():
    r0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(n):
        enc.encode(x)
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - r0) / n
faults()
before = faults()
ok = keep_freed_memory()
faults()
print(ok, before, faults())
'''


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--forwards", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    before, after = [], []
    for r in range(a.rounds):
        out = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(a.forwards)], capture_output=True,
                             text=True, check=True).stdout.split()
        applied, b, f = out[0] == "True", float(out[1]), float(out[2])
        before.append(b)
        after.append(f)
        print(f"round {r + 1}: mallopt applied {applied}; faults per forward {b:,.0f} → {f:,.0f}")
    print(f"median: {statistics.median(before):,.0f} → {statistics.median(after):,.0f} minor faults per forward")


if __name__ == "__main__":
    main()
