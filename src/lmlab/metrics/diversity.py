"""Diversity of generated texts: distinct-n and the repeated-n-gram rate.

Both count whitespace-separated words, case-sensitive, of the generated text only.

* ``distinct_n`` (Li et al. 2016): the number of distinct n-grams over all texts divided by the total
  number of n-grams over all texts (pooled over the corpus). 1.0 = no n-gram occurs twice anywhere;
  low values = the model says the same things to every input.
* ``repeated_ngram_rate`` (seq-rep-n of Welleck et al. 2019): for each text with at least one n-gram,
  ``1 - distinct n-grams / n-grams`` within that text; the mean over those texts. 0.0 = no text repeats
  an n-gram of itself; high values = degenerate loops ("the the the ..."). Texts shorter than n words
  are left out of the mean (they cannot repeat), and the result is 0.0 when no text has an n-gram.
"""

from __future__ import annotations

from collections.abc import Sequence


def ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / all n-grams, pooled over ``texts`` (0.0 when there are no n-grams)."""
    total, seen = 0, set()
    for text in texts:
        grams = ngrams(text.split(), n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def repeated_ngram_rate(texts: Sequence[str], n: int = 4) -> float:
    """Mean over texts of the share of a text's n-grams that repeat an earlier n-gram of the same text."""
    rates = []
    for text in texts:
        grams = ngrams(text.split(), n)
        if grams:
            rates.append(1.0 - len(set(grams)) / len(grams))
    return sum(rates) / len(rates) if rates else 0.0
