"""runtime.trainer: the pieces both trainers share (resume identity, NaN guard, metrics.jsonl, loss plot)."""

import json

import pytest
import torch

from rosetta_cli.errors import CheckpointError, PipelineFailure
from rosetta_cli.runtime.dist import DistInfo
from rosetta_cli.runtime.trainer import (MetricsLog, MetricWindow, check_resume, loss_png, read_metrics,
                                         resume_mismatch, stop_on_not_finite)


def test_resume_mismatch_names_changed_keys_and_reads_legacy_values():
    saved = {"lr": 0.001, "seed": 0, "stores": [["a", "f1"]], "steps": 10}
    # a tuple equals the list JSON recorded; a key the checkpoint lacks counts as its legacy value;
    # keys only the checkpoint has (steps: resumable) are not compared
    now = {"lr": 0.001, "seed": 0, "stores": (("a", "f1"),), "mask_moments": False}
    assert resume_mismatch(saved, now, legacy={"mask_moments": False}) == []
    assert resume_mismatch(saved, {**now, "mask_moments": True}, legacy={"mask_moments": False}) == ["mask_moments"]
    assert resume_mismatch(saved, {**now, "lr": 0.002, "stores": [["a", "f2"]]}) == ["lr", "stores", "mask_moments"]


def test_check_resume_raises_one_line_naming_old_and_new_values():
    check_resume("ck", {"lambda1": 0.5}, {"lambda1": 0.5})  # same: no error
    with pytest.raises(CheckpointError, match=r"ck: cannot resume: lambda1 was 0.5, now 0.3, stores \(these differ") as e:
        check_resume("ck", {"lambda1": 0.5, "stores": [1]}, {"lambda1": 0.3, "stores": [2]})
    assert "--overwrite" in e.value.hint
    assert "\n" not in str(e.value)


def test_nan_guard_names_the_window_and_the_last_good_checkpoint():
    stop_on_not_finite({"loss": 1.5, "l_vt": None}, 3, 4, "ck", 2)  # finite (None: term absent): no error
    with pytest.raises(PipelineFailure, match=r"loss became nan at step 4; .*last good checkpoint \(step 2\) is kept in ck"):
        stop_on_not_finite({"loss": float("nan")}, 3, 4, "ck", 2)
    with pytest.raises(PipelineFailure, match=r"l_vv became inf within steps 5-8; .*no checkpoint was written"):
        stop_on_not_finite({"loss": 1.0, "l_vv": float("inf")}, 4, 8, "ck", None)


def test_metric_window_means_match_a_hand_computation():
    """Sums stay on the device; the read gives each key's mean over the steps it was present in."""
    w = MetricWindow(("loss", "l_vt"), DistInfo())
    w.add({"loss": torch.tensor(1.0), "l_vt": None})
    w.add({"loss": torch.tensor(2.0), "l_vt": torch.tensor(4.0)})
    w.add({"loss": torch.tensor(6.0), "l_vt": None})
    values, flags = w.read([1.0])
    assert values == {"loss": 3.0, "l_vt": 4.0} and flags == [1.0]
    w.add({"loss": torch.tensor(float("nan")), "l_vt": None})
    values, _ = w.read()
    assert values["l_vt"] is None and values["loss"] != values["loss"]  # a fresh window after each read


def test_metrics_log_truncates_to_the_checkpoint_step_and_appends(tmp_path):
    f = tmp_path / "metrics.jsonl"
    # a run checkpointed at step 4 and killed at step 6, mid-line
    f.write_text('{"type": "frozen"}\n{"step": 2, "loss": 1.0}\n{"step": 4, "loss": 0.5}\n'
                 '{"step": 6, "loss": 0.4}\n{"step": 8, "lo')
    assert [r.get("step") for r in read_metrics(f)] == [None, 2, 4, 6]
    assert [r.get("step") for r in read_metrics(f, upto_step=4)] == [None, 2, 4]
    log = MetricsLog(f, step=4)
    log.write({"step": 6, "loss": 0.3})
    log.close()
    assert [json.loads(x) for x in f.read_text().splitlines()] == [
        {"type": "frozen"}, {"step": 2, "loss": 1.0}, {"step": 4, "loss": 0.5}, {"step": 6, "loss": 0.3}]
    assert read_metrics(tmp_path / "absent.jsonl") == []
    MetricsLog(tmp_path / "new" / "metrics.jsonl", step=0).close()  # a fresh run: the first write creates it
    assert not (tmp_path / "new" / "metrics.jsonl").exists()


def test_loss_png_is_a_png_with_one_or_two_panels():
    steps = [{"step": 1, "loss": 2.0, "l_vv": 1.0, "l_vt": None}, {"step": 2, "loss": 1.0, "l_vv": 0.5, "l_vt": None}]
    drawn = []
    one = loss_png(steps, log_y=True)
    two = loss_png(steps, keys=("loss", "l_vv", "l_vt"), second=lambda ax: drawn.append(ax))
    assert one[:8] == two[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(drawn) == 1
