"""LightningModules: one per training objective, named by ``task._target_`` in ``conf/task``.

``base.TaskModule`` holds what every task shares and the contract the stages rely on (``HEAD``,
``EVALUATION``, ``check_config``, ``check_tokenizer``, ``logged_metrics``); ``token_loss`` the token-level
cross-entropy and its evaluation loss and perplexity (language models, seq2seq); ``lm``, ``seq2seq`` and
``classification`` the tasks themselves.
"""

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
