"""Instruction tuning of decoder-only models: the generation DataModule with chat-rendered examples.

Everything but the encoding is ``Seq2SeqDataModule``'s (splits, hold-out, caps, batches, generation and
scoring): conversations from ``InstructionSource`` are rendered with the tokenizer's chat template and
encoded by ``ChatEncoder`` (loss on every assistant turn; generation from the prompt of the final one).
"""

from __future__ import annotations

from typing import Any

from transformers import PreTrainedTokenizerBase

from lmlab.data.chat_render import ChatEncoder, use_chat_template
from lmlab.data.seq2seq_datamodule import Seq2SeqDataModule
from lmlab.data.sources.instructions import InstructionSource
from lmlab.data.tokenizer import TokenizerSpec
from lmlab.errors import ConfigError


class InstructDataModule(Seq2SeqDataModule):
    """Prompt/response or chat data for decoder-only models (``task=causal_seq2seq``).

    Args: as ``Seq2SeqDataModule``, with ``source`` an ``InstructionSource``; ``max_source_length`` caps the
    rendered prompt of the final assistant turn (earlier turns included), ``max_target_length`` that turn.
    """

    KIND = "instruction data (data=instruct)"

    def __init__(
        self, source: InstructionSource, tokenizer: TokenizerSpec, cache_dir: str, **kwargs: Any
    ) -> None:
        for name in ("source_prefix", "prompt_separator"):
            if kwargs.pop(name, None):
                raise ConfigError(
                    f"data.{name} does not apply to instruction data: the chat template lays out the "
                    "prompt (put instructions in data.source.prompt_template)"
                )
        super().__init__(source, tokenizer, cache_dir, **kwargs)

    def set_head(self, head: str) -> None:
        if head != "causal_lm":
            raise ConfigError(
                f"instruction data is for decoder-only models (task=causal_seq2seq), not the {head} head"
            )
        super().set_head(head)

    def adapt_tokenizer(self, tokenizer: PreTrainedTokenizerBase) -> PreTrainedTokenizerBase:
        tokenizer = super().adapt_tokenizer(tokenizer)
        use_chat_template(tokenizer)
        return tokenizer

    def pair_encoder(self) -> ChatEncoder:  # type: ignore[override]
        return ChatEncoder(self.prepare_tokenizer(), self.max_source_length, self.max_target_length)
