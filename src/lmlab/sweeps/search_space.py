"""Search spaces in the override syntax of hydra-optuna-sweeper, turned into Optuna distributions.

``optimizer.lr: tag(log, interval(1e-4, 1e-2))``, ``data.batch_size: choice(8, 16)`` or ``8,16``,
``trainer.max_epochs: range(2, 6)`` (Hydra's range: the stop value is excluded), integers from an interval
with ``int(interval(1, 64))`` (Hydra makes interval bounds floats), plain values (fixed).
Every key is checked against the composed config before Optuna is asked for anything.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import IntervalSweep, Override, RangeSweep, Transformer
from omegaconf import DictConfig, OmegaConf
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from lmlab.errors import ConfigError

SYNTAX = (
    "interval(low, high), tag(log, interval(low, high)), int(interval(low, high)), range(start, stop[, step]), "
    "choice(a, b) or a,b"
)
_ABSENT = object()


@dataclass
class Param:
    """One searched config key: its name (``optimizer.lr``, a group such as ``model``) and distribution."""

    name: str
    distribution: BaseDistribution
    prefix: str = ""  # "+" or "++" when the override adds the key to the config

    def override(self, value: Any) -> str:
        return f"{self.prefix}{self.name}={format_value(value)}"

    @property
    def log_scale(self) -> bool:
        return bool(getattr(self.distribution, "log", False))

    def probe_values(self) -> list[Any]:
        """Values that exercise the distribution: each non-numeric choice (a group option, a name), and the
        lowest and highest number."""
        if isinstance(self.distribution, CategoricalDistribution):
            numbers = [
                c
                for c in self.distribution.choices
                if isinstance(c, (int, float)) and not isinstance(c, bool)
            ]
            others = [c for c in self.distribution.choices if c not in numbers]
            return others + sorted({min(numbers), max(numbers)} if numbers else set())
        return [self.distribution.low, self.distribution.high]


@dataclass
class SearchSpace:
    params: dict[str, Param] = field(default_factory=dict)
    fixed: list[str] = field(default_factory=list)  # overrides every trial gets as they are

    @property
    def distributions(self) -> dict[str, BaseDistribution]:
        return {name: p.distribution for name, p in self.params.items()}

    def overrides(self, values: Mapping[str, Any]) -> list[str]:
        """The overrides of one trial: the fixed ones, then one per searched parameter."""
        return [*self.fixed, *(self.params[name].override(v) for name, v in values.items())]

    def probes(self) -> Iterator[list[str]]:
        """One override list per edge value of each parameter (to compose before any trial runs)."""
        for param in self.params.values():
            for value in param.probe_values():
                yield [*self.fixed, param.override(value)]


def format_value(value: Any) -> str:
    """A trial value as Hydra override text (choices are kept in Hydra's own encoding)."""
    if isinstance(value, bool):
        return str(value).lower()
    if value is None:
        return "null"
    return repr(value) if isinstance(value, float) else str(value)


def parse_search_space(params: Mapping[str, Any] | None, arguments: Sequence[str]) -> SearchSpace:
    """``hydra.sweeper.params`` plus the command-line overrides (which win for the same key)."""
    lines = [f"{key}={value}" for key, value in (params or {}).items()] + list(arguments)
    parsed: dict[str, Override] = {}
    for override in OverridesParser.create().parse_overrides(lines):
        parsed[_name(override)] = override
    space = SearchSpace()
    for name, override in parsed.items():
        if override.is_sweep_override():
            prefix = "++" if override.is_force_add() else "+" if override.is_add() else ""
            space.params[name] = Param(name, _distribution(name, override), prefix)
        else:
            space.fixed.append(override.input_line)
    return space


def _name(override: Override) -> str:
    return override.key_or_group + (f"@{override.package}" if override.package else "")


def _distribution(name: str, override: Override) -> BaseDistribution:
    value = override.value()
    try:
        if override.is_choice_sweep() or (isinstance(value, RangeSweep) and value.shuffle):
            choices = list(override.sweep_iterator(transformer=Transformer.encode))
            return CategoricalDistribution(choices)
        if isinstance(value, RangeSweep):
            return _range_distribution(list(override.sweep_iterator()), value.step)
        if isinstance(value, IntervalSweep):
            log = "log" in value.tags
            if isinstance(value.start, int) and isinstance(value.end, int):
                return IntDistribution(value.start, value.end, log=log)
            return FloatDistribution(float(value.start), float(value.end), log=log)
    except (ValueError, TypeError) as e:
        raise ConfigError(
            f"hydra.sweeper.params: {override.input_line} is not a valid search range: {e}"
        ) from None
    raise ConfigError(f"hydra.sweeper.params: {override.input_line} is not supported; use {SYNTAX}")


def _range_distribution(values: list[Any], step: Any) -> BaseDistribution:
    if not values:
        raise ValueError("the range is empty")
    low, high, step = min(values), max(values), abs(step)
    if all(isinstance(v, int) for v in values):
        return IntDistribution(int(low), int(high), step=int(step))
    # The last value of a float range is start + k * step up to rounding; make high exactly low + k * step.
    k = round((high - low) / step)
    return FloatDistribution(float(low), float(low + k * step), step=float(step))


def check_keys_exist(space: SearchSpace, config: DictConfig) -> None:
    """Every searched key must exist in the composed config (``+key`` adds one; groups are keys too)."""
    choices = OmegaConf.select(config, "hydra.runtime.choices", default=None) or {}
    for param in space.params.values():
        key = param.name.split("@")[0]
        if param.prefix or key in choices or key.startswith("hydra."):
            continue
        if OmegaConf.select(config, key, default=_ABSENT, throw_on_missing=False) is _ABSENT:
            close = difflib.get_close_matches(key, list(_flat_keys(config)), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(
                f"hydra.sweeper.params: {key} is not in the config{hint}. Search an existing key "
                f"(`python train.py --cfg job` lists them) or write +{key} to add a new one."
            )


def check_probes_compose(space: SearchSpace, compose: Callable[[list[str]], Any]) -> Any:
    """Compose the config at the edges of the space, so a bad group choice fails before any trial; return
    the first one composed (what ``compose`` returned)."""
    first = None
    for overrides in space.probes():
        try:
            config = compose(overrides)
        except Exception as e:  # noqa: BLE001 - Hydra raises several kinds
            raise ConfigError(
                f"hydra.sweeper.params: the trial with {overrides[-1]} does not compose: {e}"
            ) from None
        first = config if first is None else first
    return first


def _flat_keys(config: DictConfig) -> Iterator[str]:
    def walk(node: Any, prefix: str) -> Iterator[str]:
        if isinstance(node, dict):
            for key, value in node.items():
                yield from walk(value, f"{prefix}{key}.")
        elif prefix:
            yield prefix[:-1]

    container = OmegaConf.to_container(config, resolve=False)
    assert isinstance(container, dict)
    container.pop("hydra", None)
    yield from walk(container, "")
