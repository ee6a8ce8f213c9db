#!/usr/bin/env bash
# Install rosetta into a fresh virtual environment (default .venv).
# torch==2.13.0 (CPU) goes in first: a bare `torch` requirement can pull a multi-GB CUDA build.
#   scripts/install.sh [VENV_DIR] [--test] [--extras] [--cuda] [--dry-run] [--help]
# --test also installs open_clip's CLIP tokenizer (lavila:CKPT text side) without its torchvision
#   dependency: PyPI's torchvision does not import beside the +cpu torch wheel.
# --extras installs the extra-encoders extra (timm, OpenCLIP) on torch==2.14.1 + torchvision==0.29.1
#   instead of torch 2.13.0: the one pair from PyPI whose torchvision imports (a CUDA-enabled build,
#   ~5.5 GB in the venv, that runs on the CPU). torchvision 0.28.0 beside torch 2.13.0+cpu fails
#   with "operator torchvision::nms does not exist".
# --cuda installs the same torch version built for CUDA, from PyTorch's wheel index for $ROSETTA_CUDA
#   (default cu128; ROSETTA_TORCH_INDEX=URL overrides the whole index), and faiss-gpu in place of
#   faiss-cpu (both install the same `faiss` module: faiss-cpu is uninstalled first, never both), then
#   prints torch.cuda.is_available(), the card and faiss.get_num_gpus(); exit 1 when either sees no GPU.
# --dry-run prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

venv=".venv"; extras=""; tokenizer=0; extra_encoders=0; cuda=0; dry=0
for a in "$@"; do
  case "$a" in
    --test) extras="[test]"; tokenizer=1 ;;
    --extras) extra_encoders=1 ;;
    --cuda) cuda=1 ;;
    --dry-run) dry=1 ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "install.sh: unknown option $a (see scripts/install.sh --help)" >&2; exit 2 ;;
    *) venv="$a" ;;
  esac
done

# run CMD...: run it, or print it (shell-quoted) under --dry-run
run() {
  if [ "$dry" = 1 ]; then
    printf '%q ' "$@" | sed 's/ $//'; echo
  else
    "$@"
  fi
}

py="$venv/bin/python"
torch_index=""
if [ "$cuda" = 1 ]; then
  torch_index="${ROSETTA_TORCH_INDEX:-https://download.pytorch.org/whl/${ROSETTA_CUDA:-cu128}}"
fi
index_args=()
[ -n "$torch_index" ] && index_args=(--index-url "$torch_index")

run python3 -m venv "$venv"
run "$py" -m pip install -q --upgrade pip
if [ "$extra_encoders" = 1 ]; then
  run "$py" -m pip install -q "${index_args[@]}" torch==2.14.1 torchvision==0.29.1
else
  run "$py" -m pip install -q "${index_args[@]}" torch==2.13.0
fi
run "$py" -m pip install -q -e ".${extras}"
if [ "$tokenizer" = 1 ]; then
  run "$py" -m pip install -q --no-deps "open-clip-torch>=2.24"
  run "$py" -m pip install -q ftfy regex
fi
if [ "$extra_encoders" = 1 ]; then
  run "$py" -m pip install -q -e ".[extra-encoders]"
  run "$py" -c "import torchvision.ops, timm, open_clip" \
    || { echo "install.sh: torchvision/timm/open_clip do not import in $venv" >&2; exit 1; }
fi
if [ "$cuda" = 1 ]; then
  # faiss-gpu and faiss-cpu write the same files: remove faiss-cpu before faiss-gpu goes in
  run "$py" -m pip uninstall -q -y faiss-cpu
  run "$py" -m pip install -q "faiss-gpu-cu12>=1.8"
  # what the venv found: torch's CUDA, the card, faiss's GPUs (one line, so --dry-run prints it plainly)
  run "$py" -c 'import faiss, torch; ok = torch.cuda.is_available(); n = faiss.get_num_gpus() if hasattr(faiss, "StandardGpuResources") else 0; print("torch", torch.__version__, "cuda available:", ok); print("card:", torch.cuda.get_device_name(0) if ok else "none"); print("faiss", faiss.__version__, "GPUs:", n); raise SystemExit(0 if ok and n > 0 else "install.sh --cuda: torch or faiss sees no CUDA GPU (check nvidia-smi, the driver and ROSETTA_CUDA)")'
fi
if [ "$dry" = 1 ]; then
  echo "(dry run: nothing was installed)"
else
  echo "installed rosetta into $venv"
fi
