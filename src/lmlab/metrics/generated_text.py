"""All scores of a set of generations: BLEU, ROUGE, length and diversity, under one set of options."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from lmlab.errors import ConfigError
from lmlab.metrics.diversity import distinct_n, repeated_ngram_rate
from lmlab.metrics.overlap import check_bleu_tokenize, corpus_bleu, rouge
from lmlab.metrics.sentences import SENTENCE_SPLITS

# What every generation evaluation logs, as <stage>/<name> (BLEU and ROUGE 0-100, diversity 0-1).
GENERATION_METRICS = (
    "bleu",
    "rouge1",
    "rouge2",
    "rougeL",
    "rougeLsum",
    "gen_len",
    "distinct_1",
    "distinct_2",
    "rep_ngram",
)


@dataclass(frozen=True)
class TextMetricOptions:
    """How generations are scored.

    Args:
        bleu_tokenize: sacreBLEU tokenizer (``13a`` = the WMT standard; ``intl``, ``zh``, ``char``, ...).
        rouge_stemmer: Porter stemming in ROUGE (as most papers and the Hugging Face examples).
        sentence_split: how texts are split into sentences for ROUGE-Lsum: ``punkt`` (offline Punkt, see
            ``lmlab.metrics.sentences``) or ``newline`` (the lines as they are).
        rep_n: the n of the repeated-n-gram rate (``rep_ngram``).
    """

    bleu_tokenize: str = "13a"
    rouge_stemmer: bool = True
    sentence_split: str = "punkt"
    rep_n: int = 4

    def __post_init__(self) -> None:
        if self.sentence_split not in SENTENCE_SPLITS:
            raise ConfigError(
                f"metrics.sentence_split={self.sentence_split!r} is not one of {SENTENCE_SPLITS}"
            )
        if self.rep_n < 1:
            raise ConfigError(f"metrics.rep_n={self.rep_n} must be at least 1")
        check_bleu_tokenize(self.bleu_tokenize, "metrics.bleu_tokenize")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def generation_scores(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    gen_lens: Sequence[int],
    options: TextMetricOptions | None = None,
) -> tuple[dict[str, float], str]:
    """``({name: value for name in GENERATION_METRICS}, sacreBLEU signature)`` of a corpus of generations.

    ``gen_len`` is the mean number of generated tokens, the end-of-sequence token included.
    """
    options = options or TextMetricOptions()
    bleu, signature = corpus_bleu(predictions, references, options.bleu_tokenize)
    scores = {"bleu": bleu}
    scores.update(rouge(predictions, references, options.rouge_stemmer, options.sentence_split))
    scores["gen_len"] = sum(gen_lens) / max(len(gen_lens), 1)
    scores["distinct_1"] = distinct_n(predictions, 1)
    scores["distinct_2"] = distinct_n(predictions, 2)
    scores["rep_ngram"] = repeated_ngram_rate(predictions, options.rep_n)
    return scores, signature
