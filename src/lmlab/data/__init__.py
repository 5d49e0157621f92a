"""Data: text sources, token caches and LightningDataModules."""

from lmlab.data.lm_datamodule import LMDataModule
from lmlab.data.sources import HubTextSource, TextFilesSource, WikiTextSource

__all__ = ["HubTextSource", "LMDataModule", "TextFilesSource", "WikiTextSource"]
