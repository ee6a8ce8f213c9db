"""`rosetta toy`: a procedurally rendered ego-exo kitchen world in the REAL dataset formats.

Real H.264 MP4 files (libx264, yuv420p, 128x128, 8 fps) and annotations laid out exactly like
the real datasets, so `rosetta extract --dataset auto` reads them with the real importers:

    DIR/egoexo4d/takes.json                                   Ego-Exo4D takes (paired ego + exo)
    DIR/egoexo4d/takes/<take_name>/frame_aligned_videos/aria01_214-1.mp4   ego (head-mounted)
    DIR/egoexo4d/takes/<take_name>/frame_aligned_videos/camNN.mp4          exo (static, 2 or 3)
    DIR/egoexo4d/annotations/keystep_segment_{train,val}.json  (val = benchmark test split)
    DIR/egoexo4d/annotations/label_mapping.csv                label_id,step_unique_id,step_name,scenario_name
    DIR/egoexo4d/annotations/proficiency_demonstrator_{train,val}.json
    DIR/egoexo4d/annotations/atomic_descriptions_{train,val}.json   timestamped "C ..." narrations of each take
    DIR/ego4d/v2/full_scale/<video_uid>.mp4, DIR/ego4d/narration.json     unpaired ego-only episodes
    DIR/htm-aa/videos/<vid>.mp4, DIR/htm-aa/htm_aa_v1.csv                  unpaired exo-only episodes
    DIR/world.json                                            ground truth (tests only)

Field conventions: `relative_path` is relative to DIR/egoexo4d/<root_dir>; proficiency
`video_paths` are relative to DIR/egoexo4d; `step_unique_id` = 5001 + label_id; Ego4D
`timestamp_frame` counts frames of the toy video (8 fps); HTM-AA timestamps are integer seconds.
Skill → proficiency: good → Intermediate/Late Expert, bad → Novice/Early Expert.

The data regime is the paper's (its Fig. 1): paired video is costly and narrow, unpaired video
plentiful and diverse. Every video is filmed in one of several visually distinct *kitchens*
(`kitchen.Kitchen`: wall, floor and table colours, table texture, lighting gain, table extent
and exo camera placements, 2-4 static distractor objects on the table), and the actor's
appearance is drawn per take. Paired Ego-Exo4D training takes come from a few kitchens only;
benchmark takes (split "val") from kitchens that no paired training take shows; Ego4D and HTM
videos, several times as many clips as the paired training set, from every kitchen.

The world: one actor at a table. Classes are verb x object keysteps (cut pepper, pour milk,
open jar, stir pot, peel carrot, wash cucumber, ...; a scale uses the first N of 16). Each
verb has its own hand trajectory and tool, each object its own colour and shape. Ego = close-up
on the kitchen's table top, moving head camera (pan, jitter, roll), forearms from the bottom; exo =
static wide shots (the wall each camera faces, decor, angles) with the whole stick/blob actor and
the object small. Skill: good = smooth; bad = hesitant (stalls/bursts) and jerky (hand jitter).
Narrations are imperfect: synonyms, ~12% uninformative, ~17% name the wrong object, ~6%
`#unsure` (Ego4D; in atomic descriptions a vague "C cuts something" with `unsure: true`), and a
quarter of the HTM lines describe a neighbouring step. Atomic descriptions: 1-2 per keystep
segment, some in the idle gaps, some not ego-visible, and on ~20% of takes a rejected second
annotator pass that names wrong objects. world.json lists, per video file, its kitchen and
segments (true class and skill), each kitchen's spec and role, and per narration and atomic
description its true class and kind (correct / wrong_object / uninformative / unsure /
misaligned / idle / rejected).

Scales (render time on the shared 2-core dev box while others worked; docs/benchmarks.md):
    tiny    8 classes, 2 kitchens; 2 paired training takes (kitchen 0) + 1 benchmark take
            (kitchen 1), 2 exo cams; 2 Ego4D + 2 HTM videos; 2 actions each:
            13 MP4s, ~730 frames, ~1 s
    small   16 classes, 12 kitchens; 16 paired training takes from 3 kitchens, 24 benchmark
            takes from 6 others, 2 exo cams; 120 Ego4D + 120 HTM videos from all 12; 3 actions
            each (the demo): 360 MP4s; 1,080 clips downstream (144 paired training = 48 segments
            x 3 cameras, 216 benchmark, 360 Ego4D, 360 HTM); ~40 s
    medium  16 classes, 24 kitchens; 32 paired training takes from 4 kitchens, 48 benchmark
            takes from 12 others, 3 exo cams; 320 Ego4D + 320 HTM; 4 actions each
`Scale.paired_train_classes` can restrict paired training takes to the first K classes (off).

Library API: `render_world(out_dir, scale="tiny", seed=0, progress=None) -> dict summary`;
`plan_world(scale, seed)` the videos (each `VideoPlan.kitchen`), `plan_kitchens(scale, seed)`;
`label_at(segments, t)` looks a true class up from world.json segments.
"""

from rosetta_cli.toy.plan import plan_kitchens, plan_world
from rosetta_cli.toy.spec import CLASSES, SCALES, label_at
from rosetta_cli.toy.world import OUTPUTS, render_world

__all__ = ["render_world", "plan_world", "plan_kitchens", "label_at", "CLASSES", "SCALES", "OUTPUTS"]
