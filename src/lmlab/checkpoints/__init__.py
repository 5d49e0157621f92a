"""Checkpoints and exports: written atomically, self-describing, found again on resume, read for evaluation;
a checkpoint is a ``.ckpt`` file or, under FSDP and DeepSpeed, a folder (``folders.py``).

Import from here: the files inside may move.
"""

from lmlab.checkpoints.atomic_io import AtomicCheckpointIO
from lmlab.checkpoints.compat import ResumeCheckpoint
from lmlab.checkpoints.eval_loader import load_model_for_eval, load_tokenizer_for_eval
from lmlab.checkpoints.export import export_hf
from lmlab.checkpoints.folders import checkpoint_layout
from lmlab.checkpoints.full_state import full_model_state_dict, load_best_weights
from lmlab.checkpoints.metadata import RunMetadata
from lmlab.checkpoints.periodic import PeriodicCheckpoint
from lmlab.checkpoints.reader import checkpoint_metadata, checkpoint_step, read_checkpoint
from lmlab.checkpoints.resume import find_resume_checkpoint

__all__ = [
    "AtomicCheckpointIO",
    "PeriodicCheckpoint",
    "ResumeCheckpoint",
    "RunMetadata",
    "checkpoint_layout",
    "checkpoint_metadata",
    "checkpoint_step",
    "export_hf",
    "find_resume_checkpoint",
    "full_model_state_dict",
    "load_best_weights",
    "load_model_for_eval",
    "load_tokenizer_for_eval",
    "read_checkpoint",
]
