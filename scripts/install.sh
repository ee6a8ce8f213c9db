#!/usr/bin/env bash
# Install rosetta into a fresh virtual environment (default .venv).
# torch==2.13.0 (CPU) goes in first: a bare `torch` requirement can pull a multi-GB CUDA build.
#   scripts/install.sh [VENV_DIR] [--test] [--extras]
# --test also installs open_clip's CLIP tokenizer (lavila:CKPT text side) without its torchvision
#   dependency: PyPI's torchvision does not import beside the +cpu torch wheel.
# --extras installs the extra-encoders extra (timm, OpenCLIP) on torch==2.14.1 + torchvision==0.29.1
#   instead of torch 2.13.0: the one pair from PyPI whose torchvision imports (a CUDA-enabled build,
#   ~5.5 GB in the venv, that runs on the CPU). torchvision 0.28.0 beside torch 2.13.0+cpu fails
#   with "operator torchvision::nms does not exist".
set -euo pipefail
cd "$(dirname "$0")/.."
venv=".venv"; extras=""; tokenizer=0; extra_encoders=0
for a in "$@"; do
  case "$a" in
    --test) extras="[test]"; tokenizer=1 ;;
    --extras) extra_encoders=1 ;;
    *) venv="$a" ;;
  esac
done
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
if [ "$extra_encoders" = 1 ]; then
  "$venv/bin/python" -m pip install -q torch==2.14.1 torchvision==0.29.1
else
  "$venv/bin/python" -m pip install -q torch==2.13.0
fi
"$venv/bin/python" -m pip install -q -e ".${extras}"
if [ "$tokenizer" = 1 ]; then
  "$venv/bin/python" -m pip install -q --no-deps "open-clip-torch>=2.24"
  "$venv/bin/python" -m pip install -q ftfy regex
fi
if [ "$extra_encoders" = 1 ]; then
  "$venv/bin/python" -m pip install -q -e ".[extra-encoders]"
  "$venv/bin/python" -c "import torchvision.ops, timm, open_clip" \
    || { echo "install.sh: torchvision/timm/open_clip do not import in $venv" >&2; exit 1; }
fi
echo "installed rosetta into $venv"
