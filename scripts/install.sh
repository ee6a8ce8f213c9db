#!/usr/bin/env bash
# Install rosetta into a fresh virtual environment (default .venv).
# torch==2.13.0 (CPU) goes in first: a bare `torch` requirement can pull a multi-GB CUDA build.
#   scripts/install.sh [VENV_DIR] [--test] [--extras]
# --test also installs open_clip's CLIP tokenizer (lavila:CKPT text side) without its torchvision
#   dependency: PyPI's torchvision does not import beside the +cpu torch wheel.
# --extras installs the extra-encoders extra (timm, OpenCLIP, torchvision==0.28.0 for torch 2.13.0);
#   use it where torch and torchvision come from the same build.
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
"$venv/bin/python" -m pip install -q torch==2.13.0
"$venv/bin/python" -m pip install -q -e ".${extras}"
if [ "$tokenizer" = 1 ]; then
  "$venv/bin/python" -m pip install -q --no-deps "open-clip-torch>=2.24"
  "$venv/bin/python" -m pip install -q ftfy regex
fi
if [ "$extra_encoders" = 1 ]; then
  "$venv/bin/python" -m pip install -q -e ".[extra-encoders]"
fi
echo "installed rosetta into $venv"
