"""FSDP auto-wrapping of Hugging Face transformer blocks, whatever the architecture.

Hugging Face models list their block classes in ``_no_split_modules`` (``GPT2Block``, ``BertLayer``,
``LlamaDecoderLayer``, ...). This policy reads that list from the model it is asked about first (the root)
and wraps each such block in its own FSDP unit, so a config needs no architecture-specific class names.
"""

from __future__ import annotations

from torch import nn


class TransformerBlockPolicy:
    def __init__(self, extra_block_names: list[str] | None = None) -> None:
        self.names: set[str] | None = set(extra_block_names or []) or None

    def _learn(self, root: nn.Module) -> set[str]:
        names = set()
        for module in root.modules():
            names.update(getattr(module, "_no_split_modules", None) or [])
        return names

    def __call__(self, module: nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
        if self.names is None:
            self.names = self._learn(module)
        if recurse:
            return True
        return type(module).__name__ in self.names
