"""A run stopped mid-epoch and resumed from its checkpoint ends with the same weights as one run straight through.

Pretraining (causal and masked LM), fine-tuning (classification with augmentation, dropout and an auxiliary
masked-LM loss) and generation (encoder-decoder and decoder-only, sampling during validation), on CPU.
"""

import pytest
import torch
from conftest import GLUE_TINY, TINY, compose
from gen_fixtures import GEN_TINY, copy_task_overrides, write_copy_task

from lmlab.stages.train import train

RUN = [
    "trainer.val_check_interval=3",
    "run_test=false",
    "export.enabled=false",
    # dropout on: the resumed run must also draw the same random numbers
    "model.config.resid_pdrop=0.1",
    "model.config.embd_pdrop=0.1",
]


def stop_at(step):
    return ["+callbacks.stop._target_=conftest.StopAtStep", f"+callbacks.stop.step={step}"]


def final_state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ after resume: {different[:5]}"


@pytest.mark.parametrize("objective", ["clm", "mlm"])
def test_resume_matches_uninterrupted(objective, wikitext_dir, tmp_path):
    overrides = [*TINY, *RUN, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    if objective == "mlm":
        overrides += ["experiment=mlm_wikitext2", "model=bert_tiny", "model.config.hidden_dropout_prob=0.1"]
        overrides = [o for o in overrides if "pdrop" not in o]

    straight = tmp_path / "straight"
    train(compose([*overrides, "trainer.max_steps=12"], straight))

    first = tmp_path / "first"
    # Same config, stopped after 6 of 12 steps (in the middle of the first epoch)
    train(compose([*overrides, "trainer.max_steps=12", *stop_at(6)], first))
    ckpt = first / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 6
    resumed = tmp_path / "resumed"
    train(compose([*overrides, "trainer.max_steps=12", f"ckpt_path={ckpt}"], resumed))

    a, b = final_state(straight), final_state(resumed)
    assert a["global_step"] == b["global_step"] == 12
    assert_same_weights(a["state_dict"], b["state_dict"])
    # and training did happen between the two halves
    mid = final_state(first)["state_dict"]
    assert any(not torch.equal(mid[k], a["state_dict"][k]) for k in mid)


def resume_after_kill(overrides, tmp_path, every, kill_after, final_step, also_from=()):
    """An uninterrupted run; the same run stopped after `kill_after` steps, and resumed from its newest
    periodic checkpoint (saved every `every` steps), as after a kill: the steps in between are replayed.
    Each checkpoint of the stopped run named in `also_from` (a glob) is resumed from as well."""
    overrides = [*overrides, f"callbacks.periodic_checkpoint.every_n_train_steps={every}"]
    train(compose(overrides, tmp_path / "straight"))
    train(compose([*overrides, *stop_at(kill_after)], tmp_path / "first"))
    saved = kill_after // every * every
    ckpts = [tmp_path / "first" / "checkpoints" / f"periodic-step{saved:06d}.ckpt"]
    ckpts += [next((tmp_path / "first" / "checkpoints").glob(pattern)) for pattern in also_from]
    a = final_state(tmp_path / "straight")
    assert a["global_step"] == final_step
    for i, ckpt in enumerate(ckpts):
        assert torch.load(ckpt, weights_only=True)["global_step"] == saved
        train(compose([*overrides, f"ckpt_path={ckpt}"], tmp_path / f"resumed{i or ''}"))
        b = final_state(tmp_path / f"resumed{i or ''}")
        assert b["global_step"] == final_step, ckpt.name
        assert_same_weights(a["state_dict"], b["state_dict"])
    mid = torch.load(ckpts[0], weights_only=True)["state_dict"]
    assert any(not torch.equal(mid[k], a["state_dict"][k]) for k in mid)


# 160 training examples in batches of 16: 10 steps an epoch, validation at each epoch's end, 3 epochs
CLASSIFICATION = [
    "experiment=glue/sst2",
    *GLUE_TINY,
    "data.max_train_samples=160",
    "trainer.max_epochs=3",
    "run_test=false",
    "run_predict=false",
    "export.enabled=false",
    "model.config.hidden_dropout_prob=0.1",
    "model.config.attention_probs_dropout_prob=0.1",
    "task.augmentation.deletion=0.1",
    "task.augmentation.swap=0.1",
    "task.augmentation.replace=0.1",
    "task.augmentation.span_mask=0.1",
    "task.aux_lm_weight=0.5",
]


@pytest.mark.parametrize(
    ("every", "kill_after", "also_from"),
    [(4, 13, ()), (5, 12, ["step000010-*.ckpt"])],
    ids=["mid-second-epoch", "end-of-first-epoch"],
)
def test_classification_with_augmentation_resumes_exactly(every, kill_after, also_from, glue_dir, tmp_path):
    """Killed after step 13 (newest checkpoint: step 12, in the second epoch) or after step 12 (newest: step 10,
    the first epoch's last batch, before its validation; and the best checkpoint, written after it); resumed,
    it ends 3 epochs later (step 30) with the uninterrupted run's weights."""
    overrides = [*CLASSIFICATION, f"paths.data_dir={glue_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    resume_after_kill(overrides, tmp_path, every, kill_after, final_step=30, also_from=also_from)


def sigterm_and_resume(overrides, where, tmp_path):
    """An uninterrupted run; the same run sent SIGTERM (`where`: SignalAtStep's step=, micro_batch=,
    val_batch=), which must exit with 143 leaving one sigterm-step*.ckpt; resumed from it. The checkpoint, and
    the final states of the uninterrupted and the resumed run."""
    train(compose(overrides, tmp_path / "straight"))
    kill = ["+callbacks.kill._target_=conftest.SignalAtStep", "+callbacks.kill.signal=SIGTERM"]
    kill += [where] if isinstance(where, str) else where
    with pytest.raises(SystemExit) as stopped:
        train(compose([*overrides, *kill], tmp_path / "first"))
    assert stopped.value.code == 143
    (ckpt,) = (tmp_path / "first" / "checkpoints").glob("sigterm-step*.ckpt")
    train(compose([*overrides, f"ckpt_path={ckpt}"], tmp_path / "resumed"))
    return ckpt, final_state(tmp_path / "straight"), final_state(tmp_path / "resumed")


def test_sigterm_in_an_epochs_last_batch_resumes_exactly(wikitext_dir, tmp_path):
    """SIGTERM during the first epoch's last batch (step 77 of the token cache's 77 a pass): the run stops
    after that step, before the epoch's end, and saves sigterm-step000077.ckpt. Resumed, it starts the second
    epoch afresh in that epoch's order and ends at step 84 with the uninterrupted run's weights. (Lightning's
    own stop finished the epoch first, and its restart then trained one batch too many.)"""
    overrides = [*TINY, *RUN, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    overrides += ["trainer.max_steps=84", "trainer.val_check_interval=40"]
    ckpt, a, b = sigterm_and_resume(overrides, "+callbacks.kill.step=77", tmp_path)
    assert ckpt.name == "sigterm-step000077.ckpt"
    loops = torch.load(ckpt, weights_only=True)["loops"]["fit_loop"]
    assert loops["epoch_loop.batch_progress"]["is_last_batch"]  # saved after the epoch's last batch
    assert a["global_step"] == b["global_step"] == 84
    assert_same_weights(a["state_dict"], b["state_dict"])


def test_sigterm_in_a_gradient_accumulation_stops_after_the_step(wikitext_dir, tmp_path):
    """Two micro-batches a step; SIGTERM after the 9th micro-batch (the first half of step 5): the run
    finishes that step and saves sigterm-step000005.ckpt; resumed, it ends with the uninterrupted run's
    weights."""
    overrides = [*TINY, *RUN, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    overrides += ["trainer.max_steps=8", "trainer.accumulate_grad_batches=2"]
    ckpt, a, b = sigterm_and_resume(overrides, "+callbacks.kill.micro_batch=9", tmp_path)
    assert ckpt.name == "sigterm-step000005.ckpt"
    assert a["global_step"] == b["global_step"] == 8
    assert_same_weights(a["state_dict"], b["state_dict"])


def test_sigterm_during_a_validation_resumes_exactly(wikitext_dir, tmp_path):
    """SIGTERM after the first of the two batches of step 6's validation: the resumed run ends with the
    uninterrupted run's weights and the same validation results at every step, step 6 included (computed
    on the whole validation set, not on the batches left after the signal)."""
    overrides = [*TINY, *RUN, f"paths.data_dir={wikitext_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    overrides += ["trainer.max_steps=9"]
    where = ["+callbacks.kill.step=6", "+callbacks.kill.val_batch=1"]
    ckpt, a, b = sigterm_and_resume(overrides, where, tmp_path)
    assert ckpt.name.startswith("sigterm-step")
    assert a["global_step"] == b["global_step"] == 9
    assert_same_weights(a["state_dict"], b["state_dict"])
    history = [state["callbacks"]["ValidationHistory"]["by_step"] for state in (a, b)]
    assert sorted(history[0]) == sorted(history[1]) == [3, 6, 9]
    for step, metrics in history[0].items():
        assert metrics == pytest.approx(history[1][step], rel=1e-6), f"validation at step {step}"


@pytest.mark.slow  # Lightning's own epoch-end save, unchanged by lmlab
def test_an_epoch_end_checkpoint_resumes_exactly(glue_dir, tmp_path):
    """A periodic checkpoint at every epoch's end (every_n_epochs=1) instead of every N steps: resumed from
    the first one (step 10), the run ends with the uninterrupted run's weights."""
    overrides = [*CLASSIFICATION, f"paths.data_dir={glue_dir}", f"paths.cache_dir={tmp_path / 'cache'}"]
    overrides += ["callbacks.periodic_checkpoint.every_n_train_steps=0"]
    overrides += ["+callbacks.periodic_checkpoint.every_n_epochs=1"]
    train(compose(overrides, tmp_path / "straight"))
    train(compose([*overrides, *stop_at(13)], tmp_path / "first"))
    ckpt = tmp_path / "first" / "checkpoints" / "periodic-step000010.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 10
    train(compose([*overrides, f"ckpt_path={ckpt}"], tmp_path / "resumed"))
    a, b = final_state(tmp_path / "straight"), final_state(tmp_path / "resumed")
    assert a["global_step"] == b["global_step"] == 30
    assert_same_weights(a["state_dict"], b["state_dict"])


@pytest.fixture(scope="module")
def copy_dir(tmp_path_factory):
    return write_copy_task(tmp_path_factory.mktemp("copy"))


# 128 training pairs in batches of 32 (copy_task_overrides): 4 steps an epoch; validation, with sampled
# generations, every 6 steps
GENERATION = [
    *GEN_TINY,
    "data.max_train_samples=128",
    "trainer.max_steps=20",
    "trainer.val_check_interval=6",
    "trainer.limit_val_batches=1",
    "task.val_generate_samples=4",
    "task.generation.do_sample=true",
    "task.generation.top_k=5",
    "task.generation.max_new_tokens=6",
    "run_test=false",
    "export.enabled=false",
]


@pytest.mark.parametrize(
    ("experiment", "model", "dropout"),
    [
        ("gen/translation_t5", "t5_tiny", "model.config.dropout_rate=0.1"),
        ("gen/translation_gpt", "gpt_tiny", "model.config.resid_pdrop=0.1"),
    ],
    ids=["encoder-decoder", "decoder-only"],
)
def test_seq2seq_resumes_exactly(experiment, model, dropout, copy_dir, tmp_path):
    """Killed after step 7 (newest checkpoint: step 6, in the second epoch, saved just before a validation that
    samples); resumed, it crosses three epoch ends and two more validations and ends at step 20 with the
    uninterrupted run's weights; those validations sample the same generations."""
    overrides = [f"experiment={experiment}", f"model={model}", dropout, *GENERATION]
    overrides += copy_task_overrides(copy_dir, tmp_path / "cache")
    resume_after_kill(overrides, tmp_path, every=3, kill_after=7, final_step=20)
    for name in ("val_step000012.jsonl", "val_step000018.jsonl"):
        straight, resumed = (tmp_path / run / "predictions" / name for run in ("straight", "resumed"))
        assert straight.read_text() == resumed.read_text()
