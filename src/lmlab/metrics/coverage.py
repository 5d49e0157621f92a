"""How well a tokenizer covers a corpus: are rare words split into subwords, or lost to the unknown token?

Words are whitespace-separated (the WikiText convention). Each distinct word is tokenized once, as it
appears inside a line (with its leading space for byte-level BPE tokenizers, whose pieces depend on it),
and weighted by its frequency:

- ``unk_rate``: share of the tokens that are the unknown token;
- ``fertility``: subword tokens per word;
- ``split_share``: share of the words (occurrences) split into two or more pieces;
- ``oov_rate`` / ``oov_type_rate``: share of the evaluation words (occurrences / distinct words) that never
  occur in the training split;
- ``top_split``: the most frequent words that were split, with their pieces.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from transformers import PreTrainedTokenizerBase


def word_counts(lines: Iterable[str]) -> Counter:
    counts: Counter = Counter()
    for line in lines:
        counts.update(line.split())
    return counts


def is_byte_level(tokenizer: PreTrainedTokenizerBase) -> bool:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    return backend is not None and "ByteLevel" in str(backend.pre_tokenizer)


def coverage_report(
    tokenizer: PreTrainedTokenizerBase, counts: Counter, train_counts: Counter | None = None, top: int = 15
) -> dict[str, Any]:
    words = list(counts)
    texts = [" " + w for w in words] if is_byte_level(tokenizer) else words
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if words else []
    pieces = dict(zip(words, ids, strict=True))
    total_words = sum(counts.values())
    total_tokens = sum(counts[w] * len(p) for w, p in pieces.items())
    unk = tokenizer.unk_token_id
    unk_tokens = sum(counts[w] * p.count(unk) for w, p in pieces.items()) if unk is not None else 0
    split = [w for w, p in pieces.items() if len(p) > 1]
    report: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "words": total_words,
        "word_types": len(words),
        "tokens": total_tokens,
        "unk_rate": unk_tokens / max(total_tokens, 1),
        "fertility": total_tokens / max(total_words, 1),
        "split_share": sum(counts[w] for w in split) / max(total_words, 1),
        "top_split": [
            {"word": w, "count": counts[w], "pieces": tokenizer.convert_ids_to_tokens(pieces[w])}
            for w in sorted(split, key=lambda w: (-counts[w], -len(pieces[w]), w))[:top]
        ],
    }
    if train_counts is not None:
        unseen = [w for w in words if w not in train_counts]
        report["oov_rate"] = sum(counts[w] for w in unseen) / max(total_words, 1)
        report["oov_type_rate"] = len(unseen) / max(len(words), 1)
    return report
