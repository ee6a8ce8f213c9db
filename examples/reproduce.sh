#!/usr/bin/env bash
# Viewpoint Rosetta Stone, one `rosetta` command per stage. Readable as documentation.
# Generated from the pipeline's table (rosetta_cli/pipeline/table.py) by
#   python -m rosetta_cli.pipeline --reproduce > examples/reproduce.sh
# (tests/test_pipeline.py checks that this file is that output); edit the table, not this file.
#
# Defaults to the synthetic toy world (no downloads). Point it at real data with:
#   EGOEXO4D_ROOT=/data/egoexo4d  (takes.json, annotations/keystep_segment_*.json, ...)  → paired store + benchmark
#   EGO4D_ROOT=/data/ego4d        (narration.json + {video_uid}.mp4)                     → unpaired ego
#   HTM_ROOT=/data/htm-aa         (htm_aa_v1.csv + {vid}.mp4)                             → unpaired exo
#   DEVICE=cuda NPROC=8           run extract, train-rst, translate, pretrain under torchrun on 8 GPUs
#   OUT=runs/paper SCALE=small SEED=0 WORKERS=8
#   STEPS=500 BATCH=64              pretraining budget of every variant (the same for all, as claims need)
#   LAVILA_CKPT=ckpt/clip_openai_timesformer_base.narrator_rephraser.ep_0005.md5sum_d73a9c.pth
#                                 the paper's f_phi: LaViLa TSF-B, 4 frames, 224 crop, clip features [N, 1, 256]
#                                 (the video side; narrations keep minilm as the paper's sentence encoder)
set -euo pipefail

OUT=${OUT:-runs/toy}
SCALE=${SCALE:-small}
SEED=${SEED:-0}
DEVICE=${DEVICE:-auto}
NPROC=${NPROC:-1}
WORKERS=${WORKERS:-2}
STEPS=${STEPS:-500}
BATCH=${BATCH:-64}
ENCODER=(); FRAMES=4
if [ -n "${LAVILA_CKPT:-}" ]; then
  ENCODER=(--encoder "lavila:$LAVILA_CKPT")   # 4 frames at 224² per clip, as in the paper
fi

# `rosetta` or `torchrun --nproc_per_node N -m rosetta_cli` for the distributed stages.
if [ "$NPROC" -gt 1 ]; then
  DIST=(torchrun --standalone --nproc_per_node "$NPROC" -m rosetta_cli)
else
  DIST=(rosetta)
fi

# 1. rosetta toy: the synthetic world, unless real roots are given.
if [ -z "${EGOEXO4D_ROOT:-}${EGO4D_ROOT:-}${HTM_ROOT:-}" ]; then
  rosetta toy --out "$OUT/world" --scale "$SCALE" --seed "$SEED" || [ -f "$OUT/world/world.json" ]
fi
EGOEXO4D_ROOT=${EGOEXO4D_ROOT:-$OUT/world/egoexo4d}
EGO4D_ROOT=${EGO4D_ROOT:-$OUT/world/ego4d}
HTM_ROOT=${HTM_ROOT:-$OUT/world/htm-aa}

# 2. rosetta extract: decode → frozen encoder → features store (+ narration embeddings).
#    Resumable: rerun the same line after an interruption. Exit 3 = some clips failed; go on.
"${DIST[@]}" extract --out "$OUT/features/egoexo4d.zarr" --videos "$EGOEXO4D_ROOT" --device "$DEVICE" \
  --workers "$WORKERS" --frames "$FRAMES" ${ENCODER[@]+"${ENCODER[@]}"} || [ $? -eq 3 ]
"${DIST[@]}" extract --out "$OUT/features/ego4d.zarr" --videos "$EGO4D_ROOT" --device "$DEVICE" --workers "$WORKERS" \
  --frames "$FRAMES" ${ENCODER[@]+"${ENCODER[@]}"} || [ $? -eq 3 ]
"${DIST[@]}" extract --out "$OUT/features/htm-aa.zarr" --videos "$HTM_ROOT" --device "$DEVICE" --workers "$WORKERS" \
  --frames "$FRAMES" ${ENCODER[@]+"${ENCODER[@]}"} || [ $? -eq 3 ]

# 3. rosetta train-rst: DiT-style conditional diffusion, ego → exo, on synchronized pairs.
"${DIST[@]}" train-rst --paired "$OUT/features/egoexo4d.zarr" --out "$OUT/rst" --device "$DEVICE" --seed "$SEED"

# 4. rosetta translate: ego store → store of hallucinated exo features.
"${DIST[@]}" translate --rst "$OUT/rst" --ego "$OUT/features/ego4d.zarr" --out "$OUT/features/ego4d.translated.zarr" \
  --device "$DEVICE" --seed "$SEED"

# 5. rosetta mine: faiss search: concat(T(z_ego), e_ego) vs concat(z_exo, e_exo) → pairs store.
#    Ours (rst) and the two baselines.
rosetta mine --ego "$OUT/features/ego4d.zarr" --exo "$OUT/features/htm-aa.zarr" \
  --translated "$OUT/features/ego4d.translated.zarr" --out "$OUT/pairs/rst-top1.zarr" --strategy rst --topk 1 \
  --seed "$SEED"
rosetta mine --ego "$OUT/features/ego4d.zarr" --exo "$OUT/features/htm-aa.zarr" --out "$OUT/pairs/text-top1.zarr" \
  --strategy text --topk 1 --seed "$SEED"
rosetta mine --ego "$OUT/features/ego4d.zarr" --exo "$OUT/features/htm-aa.zarr" --out "$OUT/pairs/random-top1.zarr" \
  --strategy random --topk 1 --seed "$SEED"

# 6. rosetta pretrain: dual encoder: soft video-video + video-text + video-synthetic InfoNCE.
#    Every variant with the same budget (STEPS steps of BATCH): ours, the two ablations (w/o soft
#    alignment, w/o RST = text-mined pairs without L_vs), random-align, paired-only.
"${DIST[@]}" pretrain --paired "$OUT/features/egoexo4d.zarr" --ego "$OUT/features/ego4d.zarr" \
  --exo "$OUT/features/htm-aa.zarr" --pairs "$OUT/pairs/rst-top1.zarr" \
  --translated "$OUT/features/ego4d.translated.zarr" --out "$OUT/models/ours" --steps "$STEPS" --batch-size "$BATCH" \
  --device "$DEVICE" --seed "$SEED" --name ViewpointRosetta
"${DIST[@]}" pretrain --paired "$OUT/features/egoexo4d.zarr" --ego "$OUT/features/ego4d.zarr" \
  --exo "$OUT/features/htm-aa.zarr" --pairs "$OUT/pairs/rst-top1.zarr" \
  --translated "$OUT/features/ego4d.translated.zarr" --out "$OUT/models/no-soft" --no-soft --steps "$STEPS" \
  --batch-size "$BATCH" --device "$DEVICE" --seed "$SEED" --name 'w/o soft alignment'
"${DIST[@]}" pretrain --paired "$OUT/features/egoexo4d.zarr" --ego "$OUT/features/ego4d.zarr" \
  --exo "$OUT/features/htm-aa.zarr" --pairs "$OUT/pairs/text-top1.zarr" --out "$OUT/models/no-rst" --no-synthetic \
  --steps "$STEPS" --batch-size "$BATCH" --device "$DEVICE" --seed "$SEED" --name 'w/o RST (text-align, SUM-L-like)'
"${DIST[@]}" pretrain --paired "$OUT/features/egoexo4d.zarr" --ego "$OUT/features/ego4d.zarr" \
  --exo "$OUT/features/htm-aa.zarr" --pairs "$OUT/pairs/random-top1.zarr" --out "$OUT/models/random" --no-synthetic \
  --no-soft --steps "$STEPS" --batch-size "$BATCH" --device "$DEVICE" --seed "$SEED" --name Random-align
"${DIST[@]}" pretrain --paired "$OUT/features/egoexo4d.zarr" --out "$OUT/models/paired-only" --steps "$STEPS" \
  --batch-size "$BATCH" --device "$DEVICE" --seed "$SEED" --name 'VI-encoder (paired only)'

# 7. rosetta bench: cross-view retrieval, recognition, skill → table, JSON, plots, HTML.
#    Table-1 style, then the same with each query's own take removed from its gallery (matching
#    the same step across takes, not the same moment).
rosetta bench --ego "$OUT/features/egoexo4d.zarr" --exo "$OUT/features/egoexo4d.zarr" --out "$OUT/report" \
  --seed "$SEED" --model "$OUT/models/ours" --name ViewpointRosetta --model "$OUT/models/no-soft" \
  --name 'w/o soft alignment' --model "$OUT/models/no-rst" --name 'w/o RST (text-align, SUM-L-like)' \
  --model "$OUT/models/random" --name Random-align --model "$OUT/models/paired-only" --name 'VI-encoder (paired only)'
rosetta bench --ego "$OUT/features/egoexo4d.zarr" --exo "$OUT/features/egoexo4d.zarr" --out "$OUT/report-other-takes" \
  --gallery other-takes --seed "$SEED" --model "$OUT/models/ours" --name ViewpointRosetta \
  --model "$OUT/models/no-soft" --name 'w/o soft alignment' --model "$OUT/models/no-rst" \
  --name 'w/o RST (text-align, SUM-L-like)' --model "$OUT/models/random" --name Random-align \
  --model "$OUT/models/paired-only" --name 'VI-encoder (paired only)'
echo "report: $OUT/report/index.html"
