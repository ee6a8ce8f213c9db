"""`rosetta toy`: a procedurally rendered ego-exo kitchen world in the REAL dataset formats.

Real H.264 MP4 files (libx264, yuv420p, 128x128, 8 fps) and annotations laid out exactly like
the real datasets, so `rosetta extract --dataset auto` reads them with the real importers:

    DIR/egoexo4d/takes.json                                   Ego-Exo4D takes (paired ego + exo)
    DIR/egoexo4d/takes/<take_name>/frame_aligned_videos/aria01_214-1.mp4   ego (head-mounted)
    DIR/egoexo4d/takes/<take_name>/frame_aligned_videos/camNN.mp4          exo (static, 2 or 3)
    DIR/egoexo4d/annotations/keystep_segment_{train,val}.json  (val = benchmark test split)
    DIR/egoexo4d/annotations/label_mapping.csv                label_id,step_unique_id,step_name,scenario_name
    DIR/egoexo4d/annotations/proficiency_demonstrator_{train,val}.json
    DIR/ego4d/v2/full_scale/<video_uid>.mp4, DIR/ego4d/narration.json     unpaired ego-only episodes
    DIR/htm-aa/videos/<vid>.mp4, DIR/htm-aa/htm_aa_v1.csv                  unpaired exo-only episodes
    DIR/world.json                                            ground truth (tests only)

Field conventions: `relative_path` is relative to DIR/egoexo4d/<root_dir>; proficiency
`video_paths` are relative to DIR/egoexo4d; `step_unique_id` = 5001 + label_id; Ego4D
`timestamp_frame` counts frames of the toy video (8 fps); HTM-AA timestamps are integer seconds.
Skill → proficiency: good → Intermediate/Late Expert, bad → Novice/Early Expert.

The world: one actor at a table. Classes are verb x object keysteps (cut pepper, pour milk,
open jar, stir pot, peel carrot, wash cucumber, ...; a scale uses the first N of 16). Each
verb has its own hand trajectory and tool, each object its own colour and shape. Ego = close-up
on a wooden table top, moving head camera (pan, jitter, roll), forearms from the bottom; exo =
static wide shots (different wall colours, decor, angles) with the whole stick/blob actor and
the object small. Skill: good = smooth; bad = hesitant (stalls/bursts) and jerky (hand jitter).
Narrations are imperfect: synonyms, ~12% uninformative, ~17% name the wrong object, ~6%
`#unsure` (Ego4D). world.json lists, per video file, its segments (true class and skill),
and per narration its true class and kind (correct / wrong_object / uninformative / unsure / misaligned).

Scales (render times on the shared 2-core dev box, quiet / loaded; docs/benchmarks.md):
    tiny    8 classes, 3 paired takes (2 exo cams) + 2 Ego4D + 2 HTM videos, 2 actions each:
            13 MP4s, ~730 frames, ~1-2 s
    small   16 classes, 60 paired takes (36 train / 24 val) + 60 Ego4D + 60 HTM videos,
            3 actions each (the demo): 300 MP4s, ~25k frames, ~15 MB, ~20-50 s; ~900 clips
            downstream (180 keystep segments x 3 cameras + 360 narrations)
    medium  16 classes, 120 paired takes (3 exo cams) + 200 Ego4D + 200 HTM, 4 actions each:
            880 MP4s, ~97k frames, 50 MB, ~3.5 min loaded
`Scale.paired_train_classes` can restrict paired training takes to the first K classes (off).

Library API: `render_world(out_dir, scale="tiny", seed=0, progress=None) -> dict summary`;
`label_at(segments, t)` looks a true class up from world.json segments.
"""

from rosetta_cli.toy.spec import CLASSES, SCALES, label_at
from rosetta_cli.toy.world import OUTPUTS, render_world

__all__ = ["render_world", "label_at", "CLASSES", "SCALES", "OUTPUTS"]
