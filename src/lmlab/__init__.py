"""lmlab: pretrain, fine-tune, evaluate and sweep Transformer language models."""

__version__ = "0.1.0"
