#!/usr/bin/env bash
# Install rosetta into a fresh virtual environment (default .venv).
# torch==2.13.0 (CPU) goes in first: a bare `torch` requirement can pull a multi-GB CUDA build.
#   scripts/install.sh [VENV_DIR] [--test]
set -euo pipefail
cd "$(dirname "$0")/.."
venv=".venv"; extras=""
for a in "$@"; do
  case "$a" in
    --test) extras="[test]" ;;
    *) venv="$a" ;;
  esac
done
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
"$venv/bin/python" -m pip install -q torch==2.13.0
"$venv/bin/python" -m pip install -q -e ".${extras}"
echo "installed rosetta into $venv"
