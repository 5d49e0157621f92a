"""Decoding settings: validated once, up front, and turned into an explicit ``GenerationConfig``.

Every knob we pass is explicit, so a score can always be reported with the settings that produced it:
the model's own ``generation_config`` (e.g. a pretrained summarizer's beam settings) never leaks in
silently. Sampling knobs left null are off (``top_k=0``, ``top_p=1``, ``temperature=1``).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from typing import Any

from transformers import GenerationConfig, PreTrainedModel, PreTrainedTokenizerBase

from lmlab.errors import ConfigError

log = logging.getLogger(__name__)

SAMPLING_KNOBS = ("temperature", "top_k", "top_p")


@dataclass(frozen=True)
class GenerationSettings:
    """What ``model.generate`` is called with. Null sampling knobs and ``length_penalty`` are "not used"."""

    max_new_tokens: int = 64
    min_new_tokens: int = 0
    num_beams: int = 1
    do_sample: bool = False
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    length_penalty: float | None = None
    no_repeat_ngram_size: int = 0
    repetition_penalty: float = 1.0

    @classmethod
    def from_config(cls, values: dict[str, Any] | None, field: str = "task.generation") -> GenerationSettings:
        """Build and validate; ``field`` names the config node in error messages."""
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"{field} has unknown setting(s) {unknown}; known: {sorted(known)}")
        settings = cls(**{k: v for k, v in values.items() if v is not None})  # null = the default
        settings.validate(field)
        return settings

    def validate(self, field: str = "task.generation") -> None:
        """Raise ConfigError for values out of range or settings that contradict each other."""
        problems = []
        if self.num_beams < 1:
            problems.append(f"{field}.num_beams={self.num_beams} must be at least 1")
        if self.max_new_tokens < 1:
            problems.append(f"{field}.max_new_tokens={self.max_new_tokens} must be at least 1")
        if not 0 <= self.min_new_tokens <= self.max_new_tokens:
            problems.append(
                f"{field}.min_new_tokens={self.min_new_tokens} must be between 0 and max_new_tokens="
                f"{self.max_new_tokens}"
            )
        if self.top_p is not None and not 0 < self.top_p <= 1:
            problems.append(f"{field}.top_p={self.top_p} must be in (0, 1]")
        if self.top_k is not None and self.top_k < 0:
            problems.append(f"{field}.top_k={self.top_k} must be >= 0 (0 = no top-k filtering)")
        if self.temperature is not None and self.temperature <= 0:
            problems.append(
                f"{field}.temperature={self.temperature} must be > 0 (for greedy decoding set do_sample=false)"
            )
        if self.repetition_penalty <= 0:
            problems.append(f"{field}.repetition_penalty={self.repetition_penalty} must be > 0 (1.0 = off)")
        if self.no_repeat_ngram_size < 0:
            problems.append(
                f"{field}.no_repeat_ngram_size={self.no_repeat_ngram_size} must be >= 0 (0 = off)"
            )
        used = [k for k in SAMPLING_KNOBS if getattr(self, k) is not None]
        if used and not self.do_sample:
            problems.append(
                f"{field}: {', '.join(f'{k}={getattr(self, k)}' for k in used)} only apply when sampling, but "
                f"do_sample=false; set {field}.do_sample=true or remove them (null)"
            )
        if self.length_penalty is not None and self.num_beams == 1:
            problems.append(
                f"{field}.length_penalty={self.length_penalty} only applies to beam search, but num_beams=1; "
                f"set {field}.num_beams>1 or length_penalty=null"
            )
        if problems:
            raise ConfigError("invalid generation settings: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> str:
        """A short line for logs, e.g. ``beam 4 (length_penalty=0.8), max_new_tokens=64``."""
        if self.do_sample:
            how = f"sampling (temperature={self.temperature or 1.0}, top_k={self.top_k or 0}, top_p={self.top_p or 1.0})"
            how = how if self.num_beams == 1 else f"{how}, {self.num_beams} beams"
        elif self.num_beams > 1:
            how = f"beam {self.num_beams}" + (
                f" (length_penalty={self.length_penalty})" if self.length_penalty else ""
            )
        else:
            how = "greedy"
        extra = [f"max_new_tokens={self.max_new_tokens}"]
        if self.min_new_tokens:
            extra.append(f"min_new_tokens={self.min_new_tokens}")
        if self.no_repeat_ngram_size:
            extra.append(f"no_repeat_ngram_size={self.no_repeat_ngram_size}")
        if self.repetition_penalty != 1.0:
            extra.append(f"repetition_penalty={self.repetition_penalty}")
        return ", ".join([how, *extra])

    def generation_config(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase
    ) -> GenerationConfig:
        """An explicit ``GenerationConfig``: these settings plus the special token ids of the tokenizer/model."""
        kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "min_new_tokens": self.min_new_tokens,
            "num_beams": self.num_beams,
            "do_sample": self.do_sample,
            "no_repeat_ngram_size": self.no_repeat_ngram_size,
            "repetition_penalty": self.repetition_penalty,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        }
        # Knobs of other strategies stay unset (transformers warns about them otherwise).
        if self.num_beams > 1:
            kwargs["length_penalty"] = 1.0 if self.length_penalty is None else self.length_penalty
        if self.do_sample:
            kwargs["temperature"] = 1.0 if self.temperature is None else self.temperature
            kwargs["top_k"] = 0 if self.top_k is None else self.top_k
            kwargs["top_p"] = 1.0 if self.top_p is None else self.top_p
        if model.config.is_encoder_decoder:
            kwargs["decoder_start_token_id"] = model.config.decoder_start_token_id
        return GenerationConfig(**kwargs)


def merge_settings(trained: dict[str, Any] | None, overrides: dict[str, Any] | None) -> dict[str, Any]:
    """The settings a model was trained with, updated by the non-null ``overrides`` (evaluate.py).

    Inherited knobs that the overrides make meaningless (sampling knobs once ``do_sample=false``,
    ``length_penalty`` once ``num_beams=1``) are dropped, with a log line, instead of failing validation.
    """
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    merged = {**(trained or {}), **given}
    drop = []
    if not merged.get("do_sample"):
        drop += [k for k in SAMPLING_KNOBS if k not in given and merged.get(k) is not None]
    if (
        merged.get("num_beams", 1) == 1
        and "length_penalty" not in given
        and merged.get("length_penalty") is not None
    ):
        drop.append("length_penalty")
    for key in drop:
        log.info(
            "Generation: not using the trained setting %s=%s with the given overrides", key, merged.pop(key)
        )
    return merged
