"""A run stopped mid-epoch and resumed from its checkpoint ends with the same weights as one run straight through."""

import pytest
import torch
from conftest import TINY, compose

from lmlab.stages.train import train

RUN = [
    "trainer.val_check_interval=3",
    "run_test=false",
    "export.enabled=false",
    # dropout on: the resumed run must also restore the random-number generators
    "model.config.resid_pdrop=0.1",
    "model.config.embd_pdrop=0.1",
]


def final_weights(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]


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
    stop = ["+callbacks.stop._target_=conftest.StopAtStep", "+callbacks.stop.step=6"]
    train(compose([*overrides, "trainer.max_steps=12", *stop], first))
    ckpt = first / "checkpoints" / "last.ckpt"
    assert torch.load(ckpt, weights_only=True)["global_step"] == 6
    resumed = tmp_path / "resumed"
    train(compose([*overrides, "trainer.max_steps=12", f"ckpt_path={ckpt}"], resumed))

    a, b = final_weights(straight), final_weights(resumed)
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ after resume: {different[:5]}"
    # and training did happen between the two halves
    mid = final_weights(first)
    assert any(not torch.equal(mid[k], a[k]) for k in a)
