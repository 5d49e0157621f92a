"""LightningModules: one per training objective."""

from lmlab.tasks.base import TaskModule
from lmlab.tasks.classification import SequenceClassificationModule
from lmlab.tasks.lm import CausalLMModule, MaskedLMModule
from lmlab.tasks.seq2seq import DecoderOnlySeq2SeqModule, Seq2SeqLMModule

__all__ = [
    "CausalLMModule",
    "DecoderOnlySeq2SeqModule",
    "MaskedLMModule",
    "Seq2SeqLMModule",
    "SequenceClassificationModule",
    "TaskModule",
]
