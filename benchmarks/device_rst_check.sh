#!/usr/bin/env bash
# GPU check of train-rst/translate (bf16 autocast, NCCL init) on a CUDA machine whose Python lacks zarr/diffusers:
# put their wheels in .whl/ first (see docs/benchmarks.md, RST "GPU check"); writes JSON to $OUT.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
nvidia-smi --query-gpu=name --format=csv,noheader
python3 -c "import sys; sys.path.insert(0,'benchmarks'); from rst import make_store; from pathlib import Path; make_store(Path('/tmp/p.zarr'), 1000)"
python3 -m rosetta_cli train-rst --paired /tmp/p.zarr --out /tmp/rst_gpu --device cuda --steps 300 --json > $OUT/train_gpu.json
python3 -m rosetta_cli train-rst --paired /tmp/p.zarr --out /tmp/rst_cpu --device cpu --steps 300 --json > $OUT/train_cpu.json
python3 -m rosetta_cli translate --rst /tmp/rst_gpu --ego /tmp/p.zarr --out /tmp/t1.zarr --device cuda --batch-size 64 --seed 3
python3 -m rosetta_cli translate --rst /tmp/rst_gpu --ego /tmp/p.zarr --out /tmp/t2.zarr --device cuda --batch-size 500 --seed 3
python3 - <<'PY'
import numpy as np, json, os
from rosetta_cli.store import Store
a, b = Store.open('/tmp/t1.zarr').features().astype(np.float32), Store.open('/tmp/t2.zarr').features().astype(np.float32)
print('translate batch 64 vs 500 max abs diff', float(np.abs(a - b).max()), 'rows', len(a))
for k in ('gpu', 'cpu'):
    print(k, open(os.environ['OUT'] + f'/train_{k}.json').read()[:600])
PY
torchrun --standalone --nproc_per_node 1 -m rosetta_cli train-rst --paired /tmp/p.zarr --out /tmp/rst_ddp --device cuda --steps 50 && echo "torchrun nccl 1-proc ok"
