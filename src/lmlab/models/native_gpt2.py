"""A lean GPT-2 for training (``model.implementation=native``): Hugging Face GPT-2's parameters and math,
nanoGPT's code path.

Why: without ``torch.compile``, Hugging Face's ``GPT2LMHeadModel`` spends training time outside the matrix
products. Its ``gelu_new`` activation is five element-wise kernels forward and more backward (PyTorch's fused
tanh-GELU computes the same function in one; lmlab's from-scratch configs use the exact GELU, which is one
kernel in either class and half the time of the tanh one on CPUs), and every call goes through cache, mask
and output-recording machinery that training on packed blocks does not use. Here the residual stream stays
2-D, projections are single ``addmm`` calls and attention is one
``F.scaled_dot_product_attention(is_causal=True)`` on the split of the fused QKV projection (see
BENCHMARKS.md).

Interop is exact by construction: parameters have the very names and shapes of ``GPT2LMHeadModel``
(``Conv1D`` layout, weight ``[in, out]``), so this module's state dict *is* a GPT-2 state dict and Lightning
checkpoints load into either class. Everything off the training path (``generate``, ``save_pretrained``) runs
on a ``GPT2LMHeadModel`` that shares these very tensors (``hf_view``); exports are real GPT-2 models.

``bias: false`` in the GPT-2 config (``model.config.bias=false``) trains without biases in the projections
and LayerNorms, as nanoGPT's default and Llama-style models: the bias tensors are kept (same names and shapes)
but stay zero, frozen and out of the computation, so an export is still an exact GPT-2 model.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import GenerationConfig, GPT2Config, GPT2LMHeadModel, PreTrainedModel
from transformers.modeling_outputs import CausalLMOutput

from lmlab.errors import ConfigError

# GPT-2 config activation names -> one fused kernel each. gelu_new/gelu_fast are the tanh approximation,
# which PyTorch computes in one kernel (|difference| < 3e-7 from Hugging Face's five-op version).
ACTIVATIONS = {
    "gelu_new": partial(F.gelu, approximate="tanh"),
    "gelu_fast": partial(F.gelu, approximate="tanh"),
    "gelu_pytorch_tanh": partial(F.gelu, approximate="tanh"),
    "gelu": F.gelu,
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
}


def uses_bias(config: GPT2Config) -> bool:
    """False when the GPT-2 config asks for no biases (``bias: false``, a field lmlab adds; default true)."""
    return bool(getattr(config, "bias", True))


def check_native_config(config: GPT2Config) -> None:
    """Raise ConfigError for GPT-2 settings this implementation does not compute (before any work)."""
    if config.model_type != "gpt2":
        raise ConfigError(
            f"model.implementation=native is a GPT-2 implementation, but the model is model_type="
            f"{config.model_type}; use model.implementation=hf"
        )
    if config.activation_function not in ACTIVATIONS:
        raise ConfigError(
            f"model.config.activation_function={config.activation_function!r} is not supported by "
            f"model.implementation=native; use one of {sorted(ACTIVATIONS)} or model.implementation=hf"
        )
    if config.add_cross_attention:
        raise ConfigError("model.implementation=native has no cross-attention; use model.implementation=hf")


class Projection(nn.Module):
    """GPT-2's ``Conv1D``: ``x @ weight + bias`` with ``weight`` of shape ``[in, out]``, on 2-D input.

    ``bias=False``: the (zero, frozen) bias is kept for GPT-2's state dict but not computed."""

    def __init__(self, n_in: int, n_out: int, bias: bool = True) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out), requires_grad=bias)
        self.use_bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.addmm(self.bias, x, self.weight) if self.use_bias else torch.mm(x, self.weight)


class Norm(nn.LayerNorm):
    """``nn.LayerNorm`` whose bias (``bias=False``: kept zero and frozen, for GPT-2's state dict) is optional."""

    def __init__(self, n: int, eps: float, bias: bool = True) -> None:
        super().__init__(n, eps=eps)
        self.bias.requires_grad_(bias)
        self.use_bias = bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = self.bias if self.use_bias else None
        return F.layer_norm(x, self.normalized_shape, self.weight, bias, self.eps)


class Attention(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        width = config.n_embd
        self.n_head, self.head_dim = config.n_head, width // config.n_head
        bias = uses_bias(config)
        self.c_attn = Projection(width, 3 * width, bias)
        self.c_proj = Projection(width, width, bias)
        self.attn_pdrop, self.resid_dropout = config.attn_pdrop, nn.Dropout(config.resid_pdrop)
        self.scale = self.head_dim**-0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scale /= float(layer_idx + 1)

    def forward(self, x: torch.Tensor, shape: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        batch, length = shape
        # split (not a permuted view of the fused projection): its backward is one cat, no extra copy
        q, k, v = (
            t.view(batch, length, self.n_head, self.head_dim).transpose(1, 2)  # (batch, heads, length, dim)
            for t in self.c_attn(x).split(self.n_head * self.head_dim, dim=1)
        )
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_pdrop if self.training else 0.0,
            is_causal=mask is None, scale=self.scale,
        )  # fmt: skip
        y = y.transpose(1, 2).reshape(batch * length, -1)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        inner = config.n_inner or 4 * config.n_embd
        bias = uses_bias(config)
        self.c_fc = Projection(config.n_embd, inner, bias)
        self.c_proj = Projection(inner, config.n_embd, bias)
        self.act = ACTIVATIONS[config.activation_function]
        self.dropout = nn.Dropout(config.resid_pdrop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class Block(nn.Module):
    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = Norm(config.n_embd, config.layer_norm_epsilon, uses_bias(config))
        self.attn = Attention(config, layer_idx)
        self.ln_2 = Norm(config.n_embd, config.layer_norm_epsilon, uses_bias(config))
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, shape: tuple[int, int], mask: torch.Tensor | None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), shape, mask)
        return x + self.mlp(self.ln_2(x))


class Body(nn.Module):
    """``transformer.*`` of GPT-2: embeddings, blocks, final norm."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.n_positions, config.n_embd)
        self.drop = nn.Dropout(config.embd_pdrop)
        self.h = nn.ModuleList([Block(config, i) for i in range(config.n_layer)])
        self.ln_f = Norm(config.n_embd, config.layer_norm_epsilon, uses_bias(config))


class NativeGPT2LMHeadModel(nn.Module):
    """GPT-2 with a causal LM head; build it with :meth:`from_hf` (weights are adopted, not copied)."""

    _no_split_modules = ["Block"]  # FSDP wraps each block (lmlab.scale.fsdp reads this, as for HF models)

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        check_native_config(config)
        self.config = config
        self.generation_config = GenerationConfig.from_model_config(config)
        self.transformer = Body(config)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as in GPT-2
        self.gradient_checkpointing = False

    @classmethod
    def from_hf(cls, model: PreTrainedModel) -> NativeGPT2LMHeadModel:
        """The same model, on the lean path: ``model``'s parameter tensors themselves (frozen flags included)."""
        if not isinstance(model, GPT2LMHeadModel):
            raise ConfigError(
                f"model.implementation=native needs a GPT2LMHeadModel, got {type(model).__name__}; "
                "use model.implementation=hf"
            )
        with torch.device("meta"):
            native = cls(model.config)
        native.load_state_dict(model.state_dict(keep_vars=True), strict=True, assign=True)
        native.lm_head.weight = native.transformer.wte.weight
        native.generation_config = model.generation_config
        if not uses_bias(model.config):
            native.freeze_unused_biases()
        return native.train(model.training)

    def freeze_unused_biases(self) -> None:
        """With ``bias: false``: check the (adopted) bias tensors are zero, and keep them out of training."""
        for name, module in self.named_modules():
            if getattr(module, "use_bias", True) is False:
                if module.bias.device.type != "meta" and bool(module.bias.detach().any()):
                    raise ConfigError(
                        f"model.config.bias=false trains GPT-2 without biases, but the weights have a nonzero "
                        f"{name}.bias (pretrained GPT-2 has biases); drop model.config.bias=false for this model"
                    )
                module.bias.requires_grad_(False)

    def hf_view(self) -> GPT2LMHeadModel:
        """A ``GPT2LMHeadModel`` sharing this model's tensors (for generation and export; no copy)."""
        with torch.device("meta"):
            hf = GPT2LMHeadModel(self.config)
        hf.load_state_dict(self.state_dict(keep_vars=True), strict=True, assign=True)
        hf.tie_weights()
        hf.generation_config = self.generation_config
        return hf.train(self.training)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> CausalLMOutput:
        """Logits (and with ``labels``, Hugging Face's shifted mean cross-entropy, -100 ignored).

        ``attention_mask`` (batch, length) hides padded keys; logits at padded positions are unspecified.
        ``position_ids`` default to ``0 .. length-1``, as in ``GPT2LMHeadModel``.
        """
        batch, length = input_ids.shape
        if length > self.config.n_positions:
            raise ValueError(f"sequence length {length} > n_positions={self.config.n_positions}")
        body = self.transformer
        positions = torch.arange(length, device=input_ids.device) if position_ids is None else position_ids
        x = body.drop(body.wte(input_ids) + body.wpe(positions)).view(batch * length, -1)
        mask = None
        if attention_mask is not None and not bool(attention_mask.all()):
            causal = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
            diagonal = torch.eye(length, dtype=torch.bool, device=x.device)  # no row is fully masked
            mask = (causal & attention_mask.bool()[:, None, None, :]) | diagonal
        for block in body.h:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(block, x, (batch, length), mask, use_reentrant=False)
            else:
                x = block(x, (batch, length), mask)
        logits = self.lm_head(body.ln_f(x)).view(batch, length, -1)
        loss = None
        if labels is not None:
            # Shift the labels, not the logits: no copy of the (batch, length, vocab) logits is made.
            targets = F.pad(labels[:, 1:], (0, 1), value=-100)
            loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten(), ignore_index=-100)
        return CausalLMOutput(loss=loss, logits=logits)

    # What the rest of lmlab (and Lightning) calls on a Hugging Face model.
    def get_input_embeddings(self) -> nn.Embedding:
        return self.transformer.wte

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        self.gradient_checkpointing = True

    def tie_weights(self) -> None:
        self.lm_head.weight = self.transformer.wte.weight

    def generate(self, *args: Any, **kwargs: Any) -> Any:
        return self.hf_view().generate(*args, **kwargs)

    def save_pretrained(self, save_directory: Any, **kwargs: Any) -> None:
        """Write a real ``GPT2LMHeadModel`` (``AutoModelForCausalLM.from_pretrained`` loads it)."""
        self.hf_view().save_pretrained(save_directory, **kwargs)
