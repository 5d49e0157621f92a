"""Conversations -> text with the tokenizer's chat template -> token ids with a loss mask.

The tokenizer's own ``chat_template`` renders the conversation (``apply_chat_template``); a tokenizer without
one gets ``PLAIN_CHAT_TEMPLATE`` (kept on the tokenizer, so the export renders prompts the same way):

    [<system>\\n\\n]### Instruction:\\n<user>\\n\\n### Response:\\n<assistant><eos>

(later turns follow after a blank line). Every assistant turn is trained (labels = its tokens); system and
user turns and the template's headers are labelled -100. The assistant spans are found by rendering each
prefix of the conversation: the text before turn i with the generation prompt, then up to and including
it; a template whose renderings are not prefixes of each other is refused. Segments are tokenized one by
one without special tokens (the template writes BOS and turn markers itself), so the prompt of the final
turn is exactly what generation starts from. The final turn ends with EOS (added if the template's turn
has none), which is where generation stops.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from transformers import PreTrainedTokenizerBase

from lmlab.data.sources.instructions import Chat
from lmlab.errors import DataError

log = logging.getLogger(__name__)

# Literal text as Jinja expressions: transformers renders with trim_blocks, which eats a newline after a tag.
PLAIN_CHAT_TEMPLATE = (
    "{% for m in messages %}"
    "{% if loop.index0 > 0 and messages[loop.index0 - 1].role == 'assistant' %}{{ '\\n\\n' }}{% endif %}"
    "{% if m.role == 'system' %}{{ m.content + '\\n\\n' }}"
    "{% elif m.role == 'user' %}{{ '### Instruction:\\n' + m.content + '\\n\\n### Response:\\n' }}"
    "{% else %}{{ m.content + eos_token }}{% endif %}"
    "{% endfor %}"
)


@dataclass
class Segment:
    text: str
    trained: bool  # an assistant turn
    cuttable: bool = False  # the last user message: what is cut first when the prompt is too long


def use_chat_template(tokenizer: PreTrainedTokenizerBase) -> None:
    """Give a tokenizer without a chat template the plain one (logged), so rendering has one template."""
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = PLAIN_CHAT_TEMPLATE
        log.info("The tokenizer has no chat template: using the plain '### Instruction/### Response' one")


def render(tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], where: str) -> list[Segment]:
    """The conversation as text segments, assistant turns marked trained; nothing after the last turn."""

    def text(upto: int, generation_prompt: bool) -> str:
        try:
            return tokenizer.apply_chat_template(
                messages[:upto], tokenize=False, add_generation_prompt=generation_prompt
            )
        except Exception as e:  # noqa: BLE001 - jinja's TemplateError and whatever the template raises
            raise DataError(
                f"{where}: the tokenizer's chat template refuses this conversation ({type(e).__name__}: "
                f"{e}); fix the conversation (e.g. roles that alternate user/assistant) or the template"
            ) from None

    full = text(len(messages), False)
    segments, pos = [], 0
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start, end = text(i, True), text(i + 1, False)
        if not (full.startswith(end) and end.startswith(start) and len(start) >= pos):
            raise DataError(
                f"{where}: the chat template renders turn {i} differently once later turns follow, so the "
                "assistant tokens cannot be located; use a template whose renderings are prefixes of each "
                "other (most are), or train on single exchanges"
            )
        segments.append(Segment(full[pos : len(start)], False))
        segments.append(Segment(full[len(start) : len(end)], True))
        pos = len(end)
    # The last user message is cut first when the prompt is too long (headers and instructions stay).
    last_user = next(m["content"] for m in reversed(messages) if m["role"] == "user")
    prompt = segments[-2]
    at = prompt.text.rfind(last_user)
    if at >= 0 and last_user:
        segments[-2:-1] = [
            Segment(prompt.text[:at], False),
            Segment(last_user, False, cuttable=True),
            Segment(prompt.text[at + len(last_user) :], False),
        ]
    return [s for s in segments if s.text or s.trained]


class ChatEncoder:
    """Turn conversations into decoder-only features: ``input_ids``, ``labels`` (-100 but on assistant turns)
    and ``prompt_len`` (everything before the final assistant turn: the prompt generation starts from).

    Too long a prompt loses the end of its last user message first, then its oldest tokens; too long a
    final response is cut and still ends with EOS.
    """

    def __init__(
        self, tokenizer: PreTrainedTokenizerBase, max_source_length: int, max_target_length: int
    ) -> None:
        self.tokenizer = tokenizer
        self.max_source_length, self.max_target_length = max_source_length, max_target_length

    def encode(self, chats: list[Chat], what: str) -> list[dict[str, Any]]:
        tok, eos = self.tokenizer, self.tokenizer.eos_token_id
        features, n_prompt_cut, n_target_cut = [], 0, 0
        for i, chat in enumerate(chats):
            segments = render(tok, chat.messages, chat.where)
            ids = tok([s.text for s in segments], add_special_tokens=False)["input_ids"]
            prompt_parts, final = list(zip(segments[:-1], ids[:-1], strict=True)), list(ids[-1])
            if eos not in final:
                final.append(eos)
            if len(final) > self.max_target_length:
                final, n_target_cut = [*final[: self.max_target_length - 1], eos], n_target_cut + 1
            excess = sum(len(x) for _, x in prompt_parts) - self.max_source_length
            if excess > 0:
                n_prompt_cut += 1
                prompt_parts = _shorten(prompt_parts, excess)
            prompt_ids = [t for _, x in prompt_parts for t in x]
            labels = [t if s.trained else -100 for s, x in prompt_parts for t in x] + final
            features.append(
                {
                    "index": i,
                    "source": chat.source,
                    "references": chat.references,
                    "input_ids": np.asarray(prompt_ids + final, dtype=np.int32),
                    "labels": np.asarray(labels, dtype=np.int32),
                    "prompt_len": len(prompt_ids),
                }
            )
        for n, name, field in ((n_prompt_cut, "prompt", "source"), (n_target_cut, "response", "target")):
            if n:
                log.info(
                    "%s: %d of %d %ss (%.1f%%) were cut to data.max_%s_length", what, n, len(chats), name,
                    100 * n / len(chats), field,
                )  # fmt: skip
        return features


def _shorten(parts: list[tuple[Segment, list[int]]], excess: int) -> list[tuple[Segment, list[int]]]:
    """Drop ``excess`` tokens: from the end of the cuttable segment first, then from the start."""
    out = []
    for segment, ids in parts:
        if segment.cuttable and excess > 0:
            cut = min(excess, len(ids))
            ids, excess = ids[: len(ids) - cut], excess - cut
        out.append((segment, list(ids)))
    while excess > 0:
        segment, ids = out[0]
        cut = min(excess, len(ids))
        out[0], excess = (segment, ids[cut:]), excess - cut
        if not out[0][1]:
            out.pop(0)
    return out
