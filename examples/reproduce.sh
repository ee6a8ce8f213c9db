#!/usr/bin/env bash
# Viewpoint Rosetta Stone, one `rosetta` command per stage. Readable as documentation.
#
# Defaults to the synthetic toy world (no downloads). Point it at real data with:
#   EGOEXO4D_ROOT=/data/egoexo4d  (takes.json, annotations/keystep_segment_*.json, ...)  → paired store + benchmark
#   EGO4D_ROOT=/data/ego4d        (narration.json + {video_uid}.mp4)                     → unpaired ego
#   HTM_ROOT=/data/htm-aa         (htm_aa_v1.csv + {vid}.mp4)                             → unpaired exo
#   DEVICE=cuda NPROC=8           run extract / train-rst / translate / pretrain under torchrun on 8 GPUs
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

# 1. Data: the toy world unless real roots are given.
if [ -z "${EGOEXO4D_ROOT:-}${EGO4D_ROOT:-}${HTM_ROOT:-}" ]; then
  rosetta toy --out "$OUT/world" --scale "$SCALE" --seed "$SEED" || [ -f "$OUT/world/world.json" ]
fi
EGOEXO4D_ROOT=${EGOEXO4D_ROOT:-$OUT/world/egoexo4d}
EGO4D_ROOT=${EGO4D_ROOT:-$OUT/world/ego4d}
HTM_ROOT=${HTM_ROOT:-$OUT/world/htm-aa}

# 2. Frozen features (resumable: rerun the same line after an interruption). Exit 3 = some clips failed; go on.
for pair in "paired:$EGOEXO4D_ROOT" "ego4d:$EGO4D_ROOT" "htm-aa:$HTM_ROOT"; do
  name=${pair%%:*}; root=${pair#*:}
  "${DIST[@]}" extract --videos "$root" --out "$OUT/features/$name.zarr" --device "$DEVICE" --workers "$WORKERS" \
    --frames "$FRAMES" ${ENCODER[@]+"${ENCODER[@]}"} || [ $? -eq 3 ]
done

# 3. Rosetta Stone Translator on synchronized pairs.
"${DIST[@]}" train-rst --paired "$OUT/features/paired.zarr" --out "$OUT/rst" --device "$DEVICE" --seed "$SEED"

# 4. Hallucinate exo features for every unpaired ego clip.
"${DIST[@]}" translate --rst "$OUT/rst" --ego "$OUT/features/ego4d.zarr" --out "$OUT/features/ego4d.translated.zarr" \
  --device "$DEVICE" --seed "$SEED"

# 5. Mine pseudo-pairs: ours (rst) and the two baselines.
rosetta mine --ego "$OUT/features/ego4d.zarr" --exo "$OUT/features/htm-aa.zarr" --translated "$OUT/features/ego4d.translated.zarr" \
  --strategy rst --topk 1 --out "$OUT/pairs/rst-top1.zarr" --seed "$SEED"
rosetta mine --ego "$OUT/features/ego4d.zarr" --exo "$OUT/features/htm-aa.zarr" --strategy text --topk 1 --out "$OUT/pairs/text-top1.zarr" --seed "$SEED"
rosetta mine --ego "$OUT/features/ego4d.zarr" --exo "$OUT/features/htm-aa.zarr" --strategy random --topk 1 --out "$OUT/pairs/random-top1.zarr" --seed "$SEED"

# 6. View-invariant dual encoders, every one with the same budget (STEPS steps of BATCH): ours, the two
#    ablations (w/o soft alignment, w/o RST = text-mined pairs without L_vs), random-align, paired-only.
P="--paired $OUT/features/paired.zarr"
U="--ego $OUT/features/ego4d.zarr --exo $OUT/features/htm-aa.zarr"
B="--steps ${STEPS:-500} --batch-size ${BATCH:-64} --device $DEVICE --seed $SEED"
TR="--translated $OUT/features/ego4d.translated.zarr"
"${DIST[@]}" pretrain $P $U --pairs "$OUT/pairs/rst-top1.zarr" $TR $B --out "$OUT/models/ours" --name ViewpointRosetta
"${DIST[@]}" pretrain $P $U --pairs "$OUT/pairs/rst-top1.zarr" $TR $B --no-soft --out "$OUT/models/no-soft" --name "w/o soft alignment"
"${DIST[@]}" pretrain $P $U --pairs "$OUT/pairs/text-top1.zarr" --no-synthetic $B --out "$OUT/models/no-rst" --name "w/o RST (text-align, SUM-L-like)"
"${DIST[@]}" pretrain $P $U --pairs "$OUT/pairs/random-top1.zarr" --no-synthetic --no-soft $B --out "$OUT/models/random" --name "Random-align"
"${DIST[@]}" pretrain $P $B --out "$OUT/models/paired-only" --name "VI-encoder (paired only)"

# 7. Cross-view benchmark (Ego-Exo4D keystep test split), Table-1 style; then the same with each query's own
#    take removed from its gallery (matching the same step across takes, not the same moment).
M=(--model "$OUT/models/ours" --name ViewpointRosetta --model "$OUT/models/no-soft" --name "w/o soft alignment"
   --model "$OUT/models/no-rst" --name "w/o RST (text-align, SUM-L-like)" --model "$OUT/models/random" --name "Random-align"
   --model "$OUT/models/paired-only" --name "VI-encoder (paired only)")
rosetta bench --ego "$OUT/features/paired.zarr" --exo "$OUT/features/paired.zarr" --out "$OUT/report" --seed "$SEED" "${M[@]}"
rosetta bench --ego "$OUT/features/paired.zarr" --exo "$OUT/features/paired.zarr" --out "$OUT/report-other-takes" \
  --gallery other-takes --seed "$SEED" "${M[@]}"
echo "report: $OUT/report/index.html"
