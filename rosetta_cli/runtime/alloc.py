"""Keep freed heap memory in the process instead of handing it back to the OS (glibc only).

Why: with glibc's defaults, every buffer above the (dynamic) mmap threshold is a fresh mmap, and
memory freed at the top of the heap is trimmed, so each encoder forward faults its activations in
again: ~16,000 minor page faults per T=4 clip in efficientnet-lite0 extraction, 0.03 core-s/clip of
kernel time plus the page zeroing's memory traffic, which two busy cores then contend for
(benchmarks/extract.py, docs/benchmarks.md "Extraction"). Reusing the heap removes almost all of it.

    keep_freed_memory()   # once per process (DataLoader workers call it in worker_init)
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3   # <malloc.h>
MMAP_MAX = 32 << 20        # glibc's largest allowed mmap threshold on 64-bit (4 * 1024 * 1024 * sizeof(long))
TRIM = 512 << 20           # free heap top kept up to this size (a worker's peak is a few hundred MB)


def keep_freed_memory(mmap_threshold: int = MMAP_MAX, trim_threshold: int = TRIM) -> bool:
    """Serve allocations up to `mmap_threshold` bytes from the heap and keep up to `trim_threshold` bytes
    of freed heap. → True if applied (glibc), False elsewhere (musl, macOS: left as they are)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success; both must hold, or faults come back through the other door
    return mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1 and mallopt(M_TRIM_THRESHOLD, trim_threshold) == 1
