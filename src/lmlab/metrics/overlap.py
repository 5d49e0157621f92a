"""Overlap with references: sacreBLEU's corpus BLEU and Google's ROUGE, called as the reference packages.

Both are thin wrappers, so the numbers are those of ``sacrebleu.corpus_bleu`` and
``rouge_score.rouge_scorer.RougeScorer`` on the same texts (tests compare them). Scores are on a 0-100 scale.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from lmlab.errors import ConfigError
from lmlab.metrics.sentences import one_sentence_per_line

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def corpus_bleu(
    predictions: Sequence[str], references: Sequence[Sequence[str]], tokenize: str = "13a"
) -> tuple[float, str]:
    """Corpus BLEU and its sacreBLEU signature; ``references[i]`` holds one or more references of example i.

    Examples may have different numbers of references (sacreBLEU's ``None`` padding of reference streams).
    """
    from sacrebleu.metrics import BLEU

    _check_lengths(predictions, references)
    check_bleu_tokenize(tokenize)
    n_streams = max(len(refs) for refs in references)
    streams = [[refs[j] if j < len(refs) else None for refs in references] for j in range(n_streams)]
    bleu = BLEU(tokenize=tokenize)
    score = bleu.corpus_score(list(predictions), streams)
    return float(score.score), str(bleu.get_signature())


def check_bleu_tokenize(tokenize: str, field: str = "bleu_tokenize") -> None:
    from sacrebleu.metrics import BLEU

    if tokenize not in BLEU.TOKENIZERS:
        raise ConfigError(
            f"{field}={tokenize!r} is not a sacreBLEU tokenizer; use one of {sorted(BLEU.TOKENIZERS)}"
        )


@lru_cache(maxsize=4)
def _scorer(use_stemmer: bool):
    from rouge_score.rouge_scorer import RougeScorer

    return RougeScorer(list(ROUGE_TYPES), use_stemmer=use_stemmer)


def rouge(
    predictions: Sequence[str],
    references: Sequence[Sequence[str]],
    use_stemmer: bool = True,
    sentence_split: str = "punkt",
) -> dict[str, float]:
    """Mean ROUGE-1/2/L/Lsum F1 over examples (x100), each example scored against its best reference.

    Texts are first put one sentence per line (see ``lmlab.metrics.sentences``); ROUGE-Lsum reads those
    lines, the other types ignore them. Several references: ``RougeScorer.score_multi`` (best F1 per type).
    Note that rouge-score's tokenizer keeps only ``[a-z0-9]`` (lower-cased): it is meant for English.
    The mean is the plain mean (``BootstrapAggregator``'s "mid" is a resampled estimate of it).
    """
    _check_lengths(predictions, references)
    scorer = _scorer(use_stemmer)
    totals = dict.fromkeys(ROUGE_TYPES, 0.0)
    for prediction, refs in zip(predictions, references, strict=True):
        pred = one_sentence_per_line(prediction, sentence_split)
        targets = [one_sentence_per_line(r, sentence_split) for r in refs]
        scores = scorer.score(targets[0], pred) if len(targets) == 1 else scorer.score_multi(targets, pred)
        for key in ROUGE_TYPES:
            totals[key] += scores[key].fmeasure
    return {key: 100.0 * total / len(predictions) for key, total in totals.items()}


def _check_lengths(predictions: Sequence[str], references: Sequence[Sequence[str]]) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} reference lists")
    if not predictions:
        raise ValueError("no predictions to score")
    if any(not refs for refs in references):
        raise ValueError("every example needs at least one reference")
