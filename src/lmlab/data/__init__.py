"""Data: text sources, token caches and LightningDataModules."""

from lmlab.data.classification_datamodule import ClassificationDataModule
from lmlab.data.lm_datamodule import LMDataModule
from lmlab.data.seq2seq_datamodule import Seq2SeqDataModule
from lmlab.data.sources import (
    GlueSource,
    HubTextSource,
    PairSource,
    TableSource,
    TextFilesSource,
    WikiTextSource,
)

__all__ = [
    "ClassificationDataModule",
    "GlueSource",
    "HubTextSource",
    "LMDataModule",
    "PairSource",
    "Seq2SeqDataModule",
    "TableSource",
    "TextFilesSource",
    "WikiTextSource",
]
