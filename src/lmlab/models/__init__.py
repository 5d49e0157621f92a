"""The Transformer: built from a config (random weights) or loaded pretrained, with its task head.

Import from here: the files inside may move.
"""

from lmlab.models.factory import ModelFactory, max_positions
from lmlab.models.heads import (
    HEADS,
    aux_lm_head,
    count_parameters,
    set_decoder_token_ids,
    set_special_token_ids,
)
from lmlab.models.hub import load_pretrained_or_explain
from lmlab.models.llama import LlamaFactory
from lmlab.models.lora import FineTuning, is_adapter

__all__ = [
    "HEADS",
    "FineTuning",
    "LlamaFactory",
    "ModelFactory",
    "aux_lm_head",
    "count_parameters",
    "is_adapter",
    "load_pretrained_or_explain",
    "max_positions",
    "set_decoder_token_ids",
    "set_special_token_ids",
]
