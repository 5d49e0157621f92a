"""LightningModules: one per training objective."""

from lmlab.tasks.base import TaskModule
from lmlab.tasks.classification import SequenceClassificationModule
from lmlab.tasks.lm import CausalLMModule, MaskedLMModule

__all__ = ["CausalLMModule", "MaskedLMModule", "SequenceClassificationModule", "TaskModule"]
