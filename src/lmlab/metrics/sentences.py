"""Offline sentence splitting for ROUGE-Lsum.

ROUGE-Lsum (Google's ``rouge-score``) scores the union of longest common subsequences sentence by sentence,
and takes sentences to be the lines of a text. Generated summaries rarely contain newlines, so, as the
Hugging Face summarization example does with ``nltk.sent_tokenize``, each text is split into sentences
first. ``nltk.sent_tokenize`` needs the ``punkt`` model, a download that is not possible offline; instead we
use nltk's own Punkt algorithm with untrained parameters plus a fixed list of common English
abbreviations (so "Mr. Smith" stays one sentence). Existing line breaks are always kept as boundaries.
"""

from __future__ import annotations

from functools import lru_cache

from lmlab.errors import ConfigError

SENTENCE_SPLITS = ("punkt", "newline")

# Lower-cased, without the final period (Punkt's convention).
ENGLISH_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt ft no vs etc e.g i.e inc ltd co corp dept gov gen col lt sgt capt cmdr "  # noqa: SIM905
    "rep sen rev fig al approx est jan feb mar apr jun jul aug sep sept oct nov dec u.s u.k a.m p.m".split()
)


@lru_cache(maxsize=1)
def _punkt():
    from nltk.tokenize.punkt import PunktParameters, PunktSentenceTokenizer

    params = PunktParameters()
    params.abbrev_types = set(ENGLISH_ABBREVIATIONS)
    return PunktSentenceTokenizer(params)


def split_sentences(text: str, mode: str = "punkt") -> list[str]:
    """The sentences of ``text``: its non-empty lines (``newline``), each further split by Punkt (``punkt``)."""
    if mode not in SENTENCE_SPLITS:
        raise ConfigError(f"sentence_split={mode!r} is not one of {SENTENCE_SPLITS}")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if mode == "newline":
        return lines
    return [s for line in lines for s in _punkt().tokenize(line)]


def one_sentence_per_line(text: str, mode: str = "punkt") -> str:
    """``text`` with one sentence per line: the form ROUGE-Lsum expects."""
    return "\n".join(split_sentences(text, mode))
