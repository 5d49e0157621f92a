"""Run ``model.generate`` on a batch and turn the new tokens into texts and lengths."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from lmlab.decoding.settings import GenerationSettings


@torch.no_grad()
def generate_texts(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    settings: GenerationSettings,
) -> tuple[list[str], list[int]]:
    """Generate for a batch; return the decoded new texts and the number of new tokens of each.

    Decoder-only prompts must be left-padded (the new tokens then start at the same column for every row).
    A length counts the generated tokens up to and including the first end-of-sequence token (all of them
    when there is none); the text is what comes before it, special tokens removed, stripped.
    """
    config = settings.generation_config(model, tokenizer)
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    # Encoder-decoder outputs start with the decoder start token; decoder-only outputs repeat the prompt.
    new = out[:, 1:] if model.config.is_encoder_decoder else out[:, input_ids.shape[1] :]
    texts, lengths = [], []
    eos = tokenizer.eos_token_id
    for row in new.tolist():
        end = row.index(eos) if eos in row else len(row)
        lengths.append(min(end + 1, len(row)))
        texts.append(tokenizer.decode(row[:end], skip_special_tokens=True).strip())
    return texts, lengths
