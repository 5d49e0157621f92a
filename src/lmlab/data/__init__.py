"""Data: text sources, token caches and LightningDataModules."""

from lmlab.data.classification_datamodule import ClassificationDataModule
from lmlab.data.classification_sources import GlueSource, TableSource
from lmlab.data.lm_datamodule import LMDataModule
from lmlab.data.sources import HubTextSource, TextFilesSource, WikiTextSource

__all__ = [
    "ClassificationDataModule",
    "GlueSource",
    "HubTextSource",
    "LMDataModule",
    "TableSource",
    "TextFilesSource",
    "WikiTextSource",
]
