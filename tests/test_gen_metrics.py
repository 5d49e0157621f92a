"""Generation metrics equal the reference packages (sacrebleu, rouge-score); diversity is as documented."""

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from lmlab.errors import ConfigError
from lmlab.metrics.diversity import distinct_n, repeated_ngram_rate
from lmlab.metrics.generated_text import GENERATION_METRICS, TextMetricOptions, generation_scores
from lmlab.metrics.overlap import ROUGE_TYPES, corpus_bleu, rouge
from lmlab.metrics.sentences import one_sentence_per_line, split_sentences

# Hypotheses and references: multi-sentence texts, punctuation, unicode, an empty prediction, a perfect
# match, newlines already in the text, and numbers.
PAIRS = [
    ("The cat sat on the mat. It was happy!", "The cat sat on a mat. It looked happy."),
    ("Ein Mann fährt Fahrrad, während es regnet.", "Ein Mann fährt bei Regen Fahrrad."),
    ("", "Two dogs play in the snow."),
    ("Two dogs are playing in the snow.", "Two dogs are playing in the snow."),
    ('He said: "Stop!" -- and left... (quickly)', 'He shouted "stop" and left quickly.'),
    ("Dr. Smith arrived at 3.30 p.m. He was late.\nNobody cared.", "Dr. Smith came late. Nobody minded."),
    ("東京は大きい都市です。", "東京は大都市です。"),
    ("running runners ran", "the runner runs"),
]
PREDICTIONS = [p for p, _ in PAIRS]
REFERENCES = [[r] for _, r in PAIRS]


def test_bleu_equals_sacrebleu_corpus_bleu():
    ours, signature = corpus_bleu(PREDICTIONS, REFERENCES)
    expected = sacrebleu.corpus_bleu(PREDICTIONS, [[r for _, r in PAIRS]])
    assert ours == expected.score
    assert "tok:13a" in signature and "nrefs:1" in signature
    for tokenize in ("intl", "char", "none"):
        ref = sacrebleu.corpus_bleu(PREDICTIONS, [[r for _, r in PAIRS]], tokenize=tokenize).score
        assert corpus_bleu(PREDICTIONS, REFERENCES, tokenize)[0] == ref


def test_bleu_with_multiple_and_varying_references():
    refs = [[r, r.upper()] for r in (r for _, r in PAIRS)]
    refs[2] = [PAIRS[2][1]]  # one example with a single reference
    ours, signature = corpus_bleu(PREDICTIONS, refs)
    streams = [[r[0] for r in refs], [r[1] if len(r) > 1 else None for r in refs]]
    assert ours == sacrebleu.corpus_bleu(PREDICTIONS, streams).score
    assert "nrefs:var" in signature
    # a second reference that matches can only help
    assert corpus_bleu(PREDICTIONS, [[r[0], p] for r, p in zip(refs, PREDICTIONS, strict=True)])[0] > ours


@pytest.mark.parametrize("split", ["newline", "punkt"])
def test_rouge_equals_rouge_score(split):
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=True)
    ours = rouge(PREDICTIONS, REFERENCES, use_stemmer=True, sentence_split=split)
    for key in ROUGE_TYPES:
        expected = [
            scorer.score(one_sentence_per_line(r, split), one_sentence_per_line(p, split))[key].fmeasure
            for p, r in PAIRS
        ]
        assert ours[key] == pytest.approx(100 * sum(expected) / len(expected), abs=1e-12)
    # newline mode is rouge-score on the texts exactly as they are (it splits Lsum on "\n" itself)
    if split == "newline":
        raw = [scorer.score(r, p)["rougeLsum"].fmeasure for p, r in PAIRS]
        assert ours["rougeLsum"] == pytest.approx(100 * sum(raw) / len(raw))


def test_rouge_multiple_references_takes_the_best_one():
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
    refs = [[r, "completely different words here"] for _, r in PAIRS]
    ours = rouge(PREDICTIONS, refs, use_stemmer=False, sentence_split="newline")
    for key in ROUGE_TYPES:
        expected = [scorer.score_multi(r, p)[key].fmeasure for p, r in zip(PREDICTIONS, refs, strict=True)]
        assert ours[key] == pytest.approx(100 * sum(expected) / len(expected))
    assert ours == rouge(PREDICTIONS, REFERENCES, use_stemmer=False, sentence_split="newline")


def test_stemming_and_sentence_splitting_matter():
    assert rouge(["running runners"], [["the runner runs"]], use_stemmer=True)["rouge1"] > 0
    assert rouge(["running runners"], [["the runner runs"]], use_stemmer=False)["rouge1"] == 0
    # Lsum sees sentences: two sentences in swapped order score higher than as one sentence
    pred, ref = "Bob can dance. Ann sings well.", "Ann sings well. Bob can dance."
    per_sentence = rouge([pred], [[ref]], sentence_split="punkt")
    as_lines = rouge([pred], [[ref]], sentence_split="newline")
    assert per_sentence["rougeLsum"] == 100.0 and as_lines["rougeLsum"] < 100.0
    assert per_sentence["rougeL"] == as_lines["rougeL"]


def test_offline_sentence_splitter():
    text = 'Mr. Smith met Dr. Jones at 3 p.m. on Jan. 5. They talked. "Really?" she asked!\nNew line here'
    assert split_sentences(text) == [
        "Mr. Smith met Dr. Jones at 3 p.m. on Jan. 5.",
        "They talked.",
        '"Really?"',
        "she asked!",
        "New line here",
    ]
    assert split_sentences("a. b.\n\nc", "newline") == ["a. b.", "c"]
    with pytest.raises(ConfigError, match="sentence_split"):
        split_sentences("x", "nltk")


def test_diversity_definitions():
    texts = ["a b a b", "a c", "x"]
    # unigrams: a b a b a c x -> 7, distinct {a, b, c, x} = 4; bigrams: ab ba ab ac -> 4, distinct 3
    assert distinct_n(texts, 1) == 4 / 7
    assert distinct_n(texts, 2) == 3 / 4
    # bigram repetition per text: "a b a b" has 3 bigrams, 2 distinct -> 1/3; "a c" -> 0; "x" has none
    assert repeated_ngram_rate(texts, 2) == pytest.approx((1 / 3 + 0) / 2)
    assert repeated_ngram_rate(["the the the the the"], 4) == 0.5
    assert repeated_ngram_rate(["short"], 4) == 0.0 and distinct_n([""], 1) == 0.0


def test_generation_scores_has_every_metric_and_length():
    scores, _ = generation_scores(PREDICTIONS, REFERENCES, [5, 7, 1, 9, 3, 4, 2, 6])
    assert set(scores) == set(GENERATION_METRICS)
    assert scores["gen_len"] == 37 / 8
    assert scores["bleu"] == sacrebleu.corpus_bleu(PREDICTIONS, [[r for _, r in PAIRS]]).score
    perfect, _ = generation_scores(["a b c d e"], [["a b c d e"]], [6])
    for key in ("bleu", "rouge1", "rouge2", "rougeL", "rougeLsum"):
        assert perfect[key] == pytest.approx(100.0)


def test_metric_options_are_validated():
    with pytest.raises(ConfigError, match="metrics.bleu_tokenize='spacy'"):
        TextMetricOptions(bleu_tokenize="spacy")
    with pytest.raises(ConfigError, match="metrics.sentence_split"):
        TextMetricOptions(sentence_split="nltk")
    with pytest.raises(ConfigError, match="rep_n"):
        TextMetricOptions(rep_n=0)
