"""End to end on fixture inputs whose conversion changes how values flow: run the input and
its expected output to the end and compare every back-propagated loss and what they print.

losstrace.py records the losses (the whole run: --steps is larger than any fixture's). What
the original prints must appear, line for line and in order, in what the converted script
prints (Lightning adds lines of its own), and the converted run writes no file or folder
the original does not. Each fixture here runs in a second or two.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from .conftest import FIXTURES, SHARED

LOSSTRACE = SHARED / "tools" / "losstrace.py"

CASES = [
    "fuzz/enumerate_start",
    "fuzz/global_counter",
    "fuzz/islice_each_epoch",
    "fuzz/list_of_batches",
    "closures/closure_defined_outside_loop",
    "closures/closure_in_train_function",
    "closures/closure_per_batch_step_loss",
    "precedence/epoch_range_expressions",
    "precedence/inlined_arguments",
    "precedence/offset_and_conditional",
    "progress/tqdm_assigned_in_epoch",
    "progress/tqdm_total_updates",
    "progress/with_tqdm_as_pbar",
    "state/batch_read_after_loop",
    "state/both_branches_bind",
    "state/bound_in_else_branch",
    "state/bound_in_try_block",
    "state/bound_on_one_branch",
    "state/class_start_epoch_attribute",
    "state/index_read_after_loop",
    "state/tuple_unpacked_state",
    "seed/random_and_numpy_draws",
    "distributed/ddp_behind_flag",
    "distributed/dataparallel_when_several_gpus",
    "cleanup/scaler_unused_on_cpu",
    "resume/skip_done_epochs_with_ckpt_path",
    "resume/resume_without_optimizer_state",
    "resume/break_before_batches",
    "cleanup/train_false_is_evaluation",
    "cleanup/update_with_model_is_no_evaluation",
    "cleanup/device_named_otherwise",
    "cleanup/comments_around_the_loop",
    "optimizer/module_level_moved",
    "optimizer/named_parameters_groups",
    "optimizer/attribute_chain_in_main",
    "optimizer/used_elsewhere_load_state_dict",
    "optimizer/args_local_to_main",
    "optimizer/scheduler_reads_args_in_main",
    "optimizer/warmup_function_at_module_level",
    "optimizer/args_changed_before_loop",
    "optimizer/scheduler_read_for_printing",
    "optimizer/learning_rate_read_in_loop",
    "optimizer/module_constants_read_in_main",
    "optimizer/helper_parameter_of_the_same_name",
    "optimizer/schedule_from_a_pure_factory",
    "optimizer/learning_rate_drawn_at_random",
    "loops/next_across_epochs",
    "loops/while_steps",
    "amp/autocast_forward_only_on_cpu",
    "amp/cpu_bf16_whole_step",
    "amp/cuda_amp_switched_off_on_cpu",
    "amp/autocast_follows_the_device",
    "device/device_from_arguments",
    "manual_optimization/two_optimizers_step_loop",
    "loops/enumerate_from_one",
    "logging/image_batch_not_logged",
    "cleanup/imports_after_the_loop",
    "state/global_in_train_function",
    "loops/list_of_samples",
    "state/global_only_read",
]
# Fixtures whose second run reads what the first wrote: both runs must match.
RUN_TWICE = ["resume/optimizer_state_alone_is_no_resume"]

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not LOSSTRACE.exists(), reason=f"{LOSSTRACE} not found"),
]


def run(script, folder, out):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONWARNINGS"] = "ignore"
    command = [sys.executable, str(LOSSTRACE), "run", "--steps", "100000", "--out", out, "--"]
    return subprocess.Popen(
        [*command, script],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process, folder, out):
    stdout, stderr = process.communicate(timeout=300)
    path = folder / out
    assert path.exists(), f"{out}: failed (exit {process.returncode}):\n{stderr[-3000:]}"
    return json.loads(path.read_text())["losses"], stdout.splitlines()


def is_subsequence(small, big):
    it = iter(big)
    return all(any(line == other for other in it) for line in small)


@pytest.mark.parametrize("case", CASES + RUN_TWICE)
def test_fixture_trains_and_prints_the_same(case, tmp_path):
    source = FIXTURES / f"{case}.in.py"
    expected = FIXTURES / f"{case}.out.py"
    if not source.exists():
        pytest.skip(f"{case}: no such fixture")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shutil.copy(source, tmp_path / "a" / "script.py")
    shutil.copy(expected, tmp_path / "b" / "script.py")
    for trace in ["trace.json", "second.json"] if case in RUN_TWICE else ["trace.json"]:
        _assert_runs_alike(tmp_path / "a", tmp_path / "b", trace)


def _assert_runs_alike(original_folder, converted_folder, trace):
    original = run("script.py", original_folder, trace)
    converted = run("script.py", converted_folder, trace)
    want, want_out = finish(original, original_folder, trace)
    got, got_out = finish(converted, converted_folder, trace)
    assert want, "the original back-propagated nothing"
    assert len(got) == len(want), (len(want), len(got))
    for step, (a, b) in enumerate(zip(want, got)):
        assert abs(a - b) <= 1e-5 + 1e-4 * abs(a), f"loss {step}: original {a}, converted {b}"
    assert is_subsequence(want_out, got_out), (want_out, got_out)
    # no lightning_logs/, checkpoints or other output the script did not write itself
    made = {p.name for p in converted_folder.iterdir()} - {
        p.name for p in original_folder.iterdir()
    }
    assert not made, made
