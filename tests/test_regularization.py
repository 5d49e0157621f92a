"""Each regularization knob changes what it claims, and only that; the coverage report counts right."""

import csv
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from conftest import GLUE_TINY, compose
from hydra.utils import instantiate
from lightning.pytorch import LightningModule, Trainer
from transformers import AutoConfig, PreTrainedTokenizerFast

from lmlab.data.tokenizer import TrainedTokenizer
from lmlab.errors import ConfigError
from lmlab.metrics.coverage import coverage_report, word_counts
from lmlab.models import ModelFactory
from lmlab.models.regularization import apply_dropout
from lmlab.stages.train import train
from lmlab.tasks.augmentation import Augmentation


@pytest.fixture(scope="module")
def wordpiece():
    lines = [("the cat sat on the mat with a dog and a bird\n", True)] * 20
    return TrainedTokenizer("wordpiece", vocab_size=300, min_frequency=1).train(iter(lines))


# --------------------------------------------------------------------------------------------- dropout
def test_dropout_knobs_map_onto_each_architecture():
    gpt = AutoConfig.for_model("gpt2")
    assert apply_dropout(gpt, {"hidden": 0.2, "attention": 0.3}) == {
        "resid_pdrop": 0.2,
        "embd_pdrop": 0.2,
        "attn_pdrop": 0.3,
    }
    bert = AutoConfig.for_model("bert")
    applied = apply_dropout(bert, {"hidden": 0.2, "attention": 0.1, "classifier": 0.4})
    assert applied == {
        "hidden_dropout_prob": 0.2,
        "attention_probs_dropout_prob": 0.1,
        "classifier_dropout": 0.4,
    }
    with pytest.raises(ConfigError, match="the llama architecture has no hidden dropout field"):
        apply_dropout(AutoConfig.for_model("llama"), {"hidden": 0.1})


def test_dropout_changes_training_outputs_but_not_evaluation_outputs(wordpiece):
    ids = torch.randint(5, len(wordpiece), (2, 12), generator=torch.Generator().manual_seed(0))
    outputs = {}
    for rate in (0.0, 0.5):
        factory = ModelFactory(model_type="bert", config={"num_hidden_layers": 1, "hidden_size": 32,
                               "num_attention_heads": 2, "intermediate_size": 64}, dropout={"hidden": rate})  # fmt: skip
        torch.manual_seed(0)
        model = factory.build("masked_lm", wordpiece)
        torch.manual_seed(1)
        train_out = model.train()(input_ids=ids).logits
        eval_out = model.eval()(input_ids=ids).logits
        outputs[rate] = (train_out, eval_out)
    assert not torch.allclose(outputs[0.0][0], outputs[0.5][0])
    assert torch.equal(outputs[0.0][1], outputs[0.5][1])


# ------------------------------------------------------------------------------------------- freezing
def test_frozen_layers_get_no_gradient(wordpiece):
    factory = ModelFactory(model_type="bert", config={"num_hidden_layers": 3, "hidden_size": 32, "num_attention_heads": 2,
                           "intermediate_size": 64}, freeze={"embeddings": True, "layers": 2})  # fmt: skip
    model = factory.build("sequence_classification", wordpiece, {"num_labels": 2})
    ids = torch.randint(5, len(wordpiece), (2, 8))
    model(input_ids=ids, labels=torch.tensor([0, 1])).loss.backward()
    grads = {n: p.grad is not None for n, p in model.named_parameters()}
    assert not any(v for n, v in grads.items() if "embeddings" in n or ".layer.0." in n or ".layer.1." in n)
    assert all(v for n, v in grads.items() if ".layer.2." in n or n.startswith("classifier"))
    with pytest.raises(ConfigError, match="has only 3 layers"):
        ModelFactory(model_type="bert", config={"num_hidden_layers": 3}, freeze={"layers": 4}).build(
            "masked_lm", wordpiece
        )


# --------------------------------------------------------------------------------------- augmentation
def test_augmentation_is_seeded_and_spares_special_tokens_and_padding():
    ids = torch.tensor([[2, 10, 11, 12, 13, 14, 15, 3, 0, 0], [2, 20, 21, 22, 23, 24, 25, 26, 27, 3]])
    mask = (ids != 0).long()
    batch = {"input_ids": ids, "attention_mask": mask}
    special = torch.tensor([0, 1, 2, 3, 4])
    aug = Augmentation(deletion=0.3, swap=0.3, replace=0.2, span_mask=0.2)

    def run(seed):
        return aug(batch, special, mask_id=4, pad_id=0, generator=torch.Generator().manual_seed(seed))

    a, b, c = run(1), run(1), run(2)
    assert torch.equal(a["input_ids"], b["input_ids"]) and not torch.equal(a["input_ids"], c["input_ids"])
    for out in (a, c):
        kept = out["attention_mask"].bool()
        # [CLS] first, [SEP] last among kept tokens, padding only at the end
        assert (out["input_ids"][:, 0] == 2).all()
        assert [row[k].tolist()[-1] for row, k in zip(out["input_ids"], kept, strict=True)] == [3, 3]
        assert (out["input_ids"][~kept] == 0).all()
        assert all(k[: int(k.sum())].all() for k in kept)
    assert torch.equal(batch["input_ids"], ids)  # the input batch itself is not modified


def test_augmentation_only_touches_training_batches(glue_dir, tmp_path, monkeypatch):
    from lmlab.tasks.classification import SequenceClassificationModule

    seen: dict[str, list] = {"train": [], "val": []}
    real = SequenceClassificationModule.forward

    def spy(self, batch):
        seen["train" if self.training else "val"].append(batch["input_ids"].clone())
        return real(self, batch)

    monkeypatch.setattr(SequenceClassificationModule, "forward", spy)
    strong = ["task.augmentation.deletion=0.5", "task.augmentation.replace=0.3"]
    overrides = [
        "experiment=glue/sst2",
        *GLUE_TINY,
        f"paths.data_dir={glue_dir}",
        "trainer.max_epochs=1",
        "run_predict=false",
    ]
    train(compose([*overrides, f"paths.cache_dir={tmp_path / 'c'}", *strong], tmp_path / "aug"))
    aug_val = [t.tolist() for t in seen["val"]]
    aug_train = seen["train"][0].tolist()
    seen["train"].clear()
    seen["val"].clear()
    train(compose([*overrides, f"paths.cache_dir={tmp_path / 'c'}"], tmp_path / "plain"))
    assert [t.tolist() for t in seen["val"]] == aug_val  # evaluation batches are identical
    assert seen["train"][0].tolist() != aug_train  # the first training batch was augmented


# ------------------------------------------------------------------------------------ label smoothing
def test_label_smoothing_is_the_reference_cross_entropy(glue_dir, tmp_path, monkeypatch):
    from lmlab.tasks.classification import SequenceClassificationModule

    captured = {}
    real = SequenceClassificationModule.training_step

    def capture(self, batch, batch_idx):
        loss = real(self, batch, batch_idx)
        if "loss" not in captured:
            with torch.no_grad():
                logits = self(batch).logits
            captured.update(loss=loss.detach(), logits=logits, labels=batch["labels"])
        return loss

    monkeypatch.setattr(SequenceClassificationModule, "training_step", capture)
    overrides = ["experiment=glue/sst2", *GLUE_TINY, f"paths.data_dir={glue_dir}", "trainer.max_steps=1"]
    overrides += ["task.label_smoothing=0.2", "model.dropout.hidden=0.0", "model.dropout.attention=0.0"]
    train(compose([*overrides, f"paths.cache_dir={tmp_path / 'c'}", "run_predict=false"], tmp_path / "run"))
    expected = F.cross_entropy(captured["logits"], captured["labels"], label_smoothing=0.2)
    assert captured["loss"].item() == pytest.approx(expected.item(), rel=1e-5)


# -------------------------------------------------------------------------------------- early stopping
class Scripted(LightningModule):
    """Logs a scripted validation metric, one value per epoch."""

    def __init__(self, values):
        super().__init__()
        self.values, self.layer = values, torch.nn.Linear(1, 1)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/accuracy", self.values[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.0)


def test_early_stopping_stops_at_the_expected_epoch(tmp_path):
    cfg = compose(["callbacks=early_stopping", "monitor.metric=val/accuracy", "monitor.mode=max",
                   "callbacks.early_stopping.patience=2", "callbacks.early_stopping.min_delta=0.01"], tmp_path)  # fmt: skip
    stopper = instantiate(cfg.callbacks.early_stopping)
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.ones(4, 1)), batch_size=2)
    # best 0.70 at epoch 1; 0.705 is not an improvement of at least min_delta; two such epochs stop it
    module = Scripted([0.5, 0.70, 0.705, 0.69, 0.9, 0.9])
    trainer = Trainer(max_epochs=6, callbacks=[stopper], logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)  # fmt: skip
    trainer.fit(module, data, data)
    assert trainer.current_epoch == 4 and stopper.stopped_epoch == 3


# -------------------------------------------------------------------------------------- aux LM, curves
@pytest.mark.parametrize("model", ["bert_tiny", "gpt_tiny"])
def test_auxiliary_lm_loss_shares_the_body(model, glue_dir, tmp_path):
    tokenizer = (
        ["tokenizer=wordpiece"] if model == "bert_tiny" else ["tokenizer=bpe", "tokenizer.vocab_size=400"]
    )
    overrides = [
        "experiment=glue/rte",
        *[o for o in GLUE_TINY if not o.startswith(("model=", "tokenizer"))],
        f"model={model}",
    ]
    overrides += [
        *tokenizer,
        "tokenizer.min_frequency=1",
        f"paths.data_dir={glue_dir}",
        f"paths.cache_dir={tmp_path / 'c'}",
    ]
    overrides += [
        "task.aux_lm_weight=0.5",
        "trainer.max_steps=4",
        "trainer.log_every_n_steps=1",
        "run_predict=false",
    ]
    train(compose(overrides, tmp_path / "run"))
    with open(tmp_path / "run" / "csv" / "metrics.csv") as f:
        aux = [float(r["train/aux_lm_loss"]) for r in csv.DictReader(f) if r.get("train/aux_lm_loss")]
    assert len(aux) == 4 and all(0 < a < 20 for a in aux)
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert any(k.startswith("aux_lm.") for k in state)
    assert (tmp_path / "run" / "learning_curves.png").stat().st_size > 1000


# ---------------------------------------------------------------------------------------------- coverage
def test_coverage_report_equals_hand_counts():
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {"[UNK]": 0, "[PAD]": 1, "the": 2, "cat": 3, "##s": 4, "sat": 5}
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]", pad_token="[PAD]")
    report = coverage_report(
        tok, word_counts(["the cats sat\n", "the zzz\n"]), word_counts(["the cat sat\n"])
    )
    # words: the, cats (cat ##s), sat, the, zzz ([UNK]) -> 5 words, 6 tokens
    assert (report["words"], report["word_types"], report["tokens"]) == (5, 4, 6)
    assert report["fertility"] == pytest.approx(6 / 5)
    assert report["unk_rate"] == pytest.approx(1 / 6)
    assert report["split_share"] == pytest.approx(1 / 5)
    assert report["oov_rate"] == pytest.approx(2 / 5) and report["oov_type_rate"] == pytest.approx(2 / 4)
    assert report["top_split"] == [{"word": "cats", "count": 1, "pieces": ["cat", "##s"]}]
    assert word_counts(["a b a\n"]) == Counter({"a": 2, "b": 1})
