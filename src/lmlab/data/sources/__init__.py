"""Where examples come from: LM text, labeled tables and GLUE, source/target pairs (local files, then the hub).

Import from here: the files inside may move.
"""

from lmlab.data.sources.labeled import ClassificationSpec, Example, GlueSource, TableSource
from lmlab.data.sources.pairs import Pair, PairSource
from lmlab.data.sources.text import HubTextSource, Lines, TextFilesSource, TextSource, WikiTextSource

__all__ = [
    "ClassificationSpec",
    "Example",
    "GlueSource",
    "HubTextSource",
    "Lines",
    "Pair",
    "PairSource",
    "TableSource",
    "TextFilesSource",
    "TextSource",
    "WikiTextSource",
]
