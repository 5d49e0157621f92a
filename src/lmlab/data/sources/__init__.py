"""Where examples come from: LM text, labeled tables and GLUE, source/target pairs (local files, then the hub).

Import from here: the files inside may move. Inside: ``text.py`` (LM text: WikiText, text files, hub text),
``labeled.py`` (the example and spec types of classification), ``glue.py`` + ``glue_tasks.py`` (GLUE),
``table.py`` (users' labeled tables), ``shards.py`` (token shards made by ``prepare_data.py``),
``pairs.py`` + ``pair_files.py`` (source/target pairs), ``instructions.py`` (prompt/response and chat
records), and ``locate.py`` (what all of them share to find a split: first existing file, hub loading,
fingerprints).
"""

from lmlab.data.sources.glue import GlueSource
from lmlab.data.sources.instructions import Chat, InstructionSource
from lmlab.data.sources.labeled import ClassificationSpec, Example
from lmlab.data.sources.pairs import Pair, PairSource
from lmlab.data.sources.shards import ShardSource
from lmlab.data.sources.table import TableSource
from lmlab.data.sources.text import HubTextSource, Lines, TextFilesSource, TextSource
from lmlab.data.sources.wikitext import WikiTextSource

__all__ = [
    "Chat",
    "ClassificationSpec",
    "Example",
    "GlueSource",
    "HubTextSource",
    "InstructionSource",
    "Lines",
    "Pair",
    "PairSource",
    "ShardSource",
    "TableSource",
    "TextFilesSource",
    "TextSource",
    "WikiTextSource",
]
