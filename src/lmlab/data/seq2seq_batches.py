"""Token ids and batches of source/target pairs, for encoder-decoder and decoder-only models.

Encoder-decoder: ``input_ids`` = the (prefixed) source, ``labels`` = the target ending in EOS.
Decoder-only: one sequence ``prompt + target + EOS`` where the prompt is ``source_prefix + source +
prompt_separator``; ``labels`` are -100 on the prompt, so only target tokens (and the EOS that teaches the
model to stop) are learned. Prompt and target are tokenized separately, so the split between them is
exact and generation sees the very prompt tokens training saw.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from transformers import DataCollatorForSeq2Seq, PreTrainedTokenizerBase

from lmlab.data.sources import Pair
from lmlab.errors import ConfigError

log = logging.getLogger(__name__)


def ensure_pad_and_eos(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give the tokenizer an EOS (ends every target) and a pad token (batches), on purpose and logged."""
    if tokenizer.eos_token_id is None:
        if tokenizer.sep_token_id is not None:
            tokenizer.eos_token = tokenizer.sep_token
            log.warning("The tokenizer has no EOS token: using its SEP token %r as EOS", tokenizer.sep_token)
        else:
            tokenizer.add_special_tokens({"eos_token": "</s>"})
            log.warning(
                "The tokenizer has no EOS token: added '</s>' (id %d); a pretrained model needs "
                "model.resize_token_embeddings=true to get an embedding for it",
                tokenizer.eos_token_id,
            )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
        log.info("The tokenizer has no pad token: padding with its EOS token %r", tokenizer.eos_token)


class PairEncoder:
    """Turn pairs into features: ``index``, texts, ``input_ids`` and ``labels`` (encoder-decoder) or
    ``prompt_len`` (decoder-only: the labels and the prompt to generate from are cut from ``input_ids``)."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        decoder_only: bool,
        max_source_length: int,
        max_target_length: int,
        source_prefix: str = "",
        prompt_separator: str = "\n",
    ) -> None:
        self.tokenizer, self.decoder_only = tokenizer, decoder_only
        self.max_source_length, self.max_target_length = max_source_length, max_target_length
        self.source_prefix, self.prompt_separator = source_prefix, prompt_separator
        self.separator_ids = (
            tokenizer(prompt_separator, add_special_tokens=False)["input_ids"] if decoder_only else []
        )
        if decoder_only and len(self.separator_ids) >= max_source_length:
            raise ConfigError(
                f"data.max_source_length={max_source_length} leaves no room for the source after the "
                f"{len(self.separator_ids)} token(s) of data.prompt_separator={prompt_separator!r}"
            )
        probe = tokenizer(text_target="a", add_special_tokens=True)["input_ids"]
        # T5/BART/Marian tokenizers end targets with EOS themselves; ours (and GPT-2's) do not.
        self.target_has_eos = not decoder_only and bool(probe) and probe[-1] == tokenizer.eos_token_id

    def _tokenize(self, texts: list[str], limit: int, target: bool) -> tuple[list[list[int]], int]:
        """Ids of ``texts`` cut to ``limit`` tokens (special tokens kept), and how many had to be cut."""
        tok = self.tokenizer
        kwargs: dict[str, Any] = {"add_special_tokens": not (target and self.decoder_only)}
        key = "text_target" if target and not self.decoder_only else "text"
        ids = tok(**{key: texts}, **kwargs)["input_ids"]
        long = [i for i, x in enumerate(ids) if len(x) > limit]
        if long:  # again with truncation, so that tokens like a final </s> survive the cut
            cut = tok(**{key: [texts[i] for i in long]}, **kwargs, truncation=True, max_length=limit)[
                "input_ids"
            ]
            for i, x in zip(long, cut, strict=True):
                ids[i] = x
        return ids, len(long)

    def encode(self, pairs: list[Pair], what: str) -> list[dict[str, Any]]:
        eos = self.tokenizer.eos_token_id
        room = self.max_source_length - len(self.separator_ids)
        src_ids, n_src_cut = self._tokenize(
            [self.source_prefix + p.source for p in pairs], room, target=False
        )
        # Targets end in EOS; room is kept for it where the tokenizer does not add it itself.
        tgt_room = self.max_target_length - (not self.target_has_eos)
        tgt_ids, n_tgt_cut = self._tokenize([p.references[0] for p in pairs], tgt_room, target=True)
        features = []
        for i, (pair, s, t) in enumerate(zip(pairs, src_ids, tgt_ids, strict=True)):
            t = t if self.target_has_eos else [*t, eos]
            # int32 arrays: a tenth of the memory of Python lists of ints (large summarization sets).
            feature: dict[str, Any] = {"index": i, "source": pair.source, "references": pair.references}
            if self.decoder_only:
                prompt = s + self.separator_ids
                feature.update(input_ids=np.asarray(prompt + t, dtype=np.int32), prompt_len=len(prompt))
            else:
                feature.update(input_ids=np.asarray(s, dtype=np.int32), labels=np.asarray(t, dtype=np.int32))
            features.append(feature)
        for n, name in ((n_src_cut, "source"), (n_tgt_cut, "target")):
            if n:
                log.info(
                    "%s: %d of %d %ss (%.1f%%) were cut to data.max_%s_length", what, n, len(pairs), name,
                    100 * n / len(pairs), name,
                )  # fmt: skip
        return features


class PairCollator:
    """Pad ``input_ids`` and ``labels`` (with -100) via ``DataCollatorForSeq2Seq``; for decoder-only models
    also the prompts alone, left-padded for generation; keep example indices and texts for scoring. A
    decoder-only feature with ``labels`` of its own (chats: every assistant turn) keeps them."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, pad_to_multiple_of: int | None = None) -> None:
        self.pad_id = tokenizer.pad_token_id
        self.collator = DataCollatorForSeq2Seq(
            tokenizer, label_pad_token_id=-100, pad_to_multiple_of=pad_to_multiple_of, return_tensors="pt"
        )

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        decoder_only = "prompt_len" in features[0]
        rows = []
        for f in features:
            ids = f["input_ids"].tolist()
            if "labels" in f:  # encoder-decoder targets, or a decoder-only mask of its own (chats)
                labels = f["labels"].tolist()
            else:
                labels = [-100] * f["prompt_len"] + ids[f["prompt_len"] :]
            rows.append({"input_ids": ids, "labels": labels})
        batch = dict(self.collator(rows))
        if decoder_only:
            width = max(f["prompt_len"] for f in features)
            ids = torch.full((len(features), width), self.pad_id, dtype=torch.long)
            mask = torch.zeros((len(features), width), dtype=torch.long)
            for row, f in enumerate(features):
                n = f["prompt_len"]
                ids[row, width - n :] = torch.from_numpy(f["input_ids"][:n].astype(np.int64))
                mask[row, width - n :] = 1
            batch.update(prompt_ids=ids, prompt_attention_mask=mask)
        batch["index"] = torch.tensor([f["index"] for f in features])
        batch["sources"] = [f["source"] for f in features]
        batch["references"] = [f["references"] for f in features]
        return batch
