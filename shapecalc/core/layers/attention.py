"""Attention: ``nn.MultiheadAttention``, ``F.scaled_dot_product_attention`` and
``nn.TransformerEncoderLayer``, with torch's argument names, shapes and parameter counts.

MACs follow shapecalc's one rule: every weight and bias once per position it is applied at
(as :class:`~shapecalc.core.layers.basic.Linear` on a sequence), plus the two attention matmuls,
QKᵀ (L·S·head_dim per head) and attention·V (L·S·head_dim per head). Softmax, scaling and
masking are element-wise and count 0, as they do for every other element-wise op.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import ClassVar

from shapecalc.core.errors import ConfigError, ShapeError
from shapecalc.core.arithmetic import FieldRule
from shapecalc.core.arithmetic.field_axes import Mixed
from shapecalc.core.layers.base import FieldSteps, Layer, LayerKind, Shape, format_shape
from shapecalc.core.layers.basic import Linear
from shapecalc.core.layers.merge import broadcast_shapes
from shapecalc.core.layers.norm import LayerNorm
from shapecalc.core.layers.sequence import SequenceDims, check_positive, check_probability, split_sequence


def attention_steps(query: Shape, output: Shape, positions: int) -> Mixed:
    """Every attention layer's field rule, in one place. Each output row reads its query row
    and every key and value row of its batch: the query's positions (axis ``positions``) and
    features (the last axis) are read whole, every other axis position by position. A window
    attention folds its windows into the batch axis, so each output reads its window only:
    "global" whatever came before would be wrong. The keys', values' and mask's fields must be
    the query's (``attends``: :func:`~shapecalc.core.layers.base.merge_fields`, and the same in
    :mod:`~shapecalc.core.image_fields`), else the field is unknown."""
    query = tuple(query)
    return Mixed(query, tuple(output), frozenset({positions % len(query), len(query) - 1}),
                 attends=True)


@dataclass(frozen=True)
class MultiheadAttention(Layer):
    """``nn.MultiheadAttention``: inputs ``(query,)`` (self-attention) or ``(query, key, value)``."""

    embed_dim: int
    num_heads: int
    dropout: float = 0.0
    bias: bool = True
    add_bias_kv: bool = False
    add_zero_attn: bool = False
    kdim: int | None = None
    vdim: int | None = None
    batch_first: bool = False

    kind: ClassVar[LayerKind] = LayerKind.LINEAR
    arity: ClassVar[int] = 0  # one input (self-attention) or three

    def __post_init__(self) -> None:
        check_positive(self, embed_dim=self.embed_dim, num_heads=self.num_heads,
                       kdim=self.kdim, vdim=self.vdim)
        check_probability(self, "dropout", self.dropout)
        if self.embed_dim % self.num_heads:
            raise ConfigError(
                f"embed_dim {self.embed_dim} must be divisible by num_heads {self.num_heads}",
                layer=self.describe(), numbers={"embed_dim": self.embed_dim, "num_heads": self.num_heads})

    @property
    def key_dim(self) -> int:
        return self.embed_dim if self.kdim is None else self.kdim

    @property
    def value_dim(self) -> int:
        return self.embed_dim if self.vdim is None else self.vdim

    def _dims(self, inputs: tuple[Shape, ...]) -> tuple[SequenceDims, SequenceDims, SequenceDims]:
        if len(inputs) not in (1, 3):
            raise ShapeError(f"takes (query,) or (query, key, value), got {len(inputs)} inputs",
                             layer=self.describe())
        q_shape, k_shape, v_shape = inputs if len(inputs) == 3 else inputs * 3
        q = split_sequence(self, q_shape, self.batch_first, "query")
        k = split_sequence(self, k_shape, self.batch_first, "key")
        v = split_sequence(self, v_shape, self.batch_first, "value")
        if not len(q_shape) == len(k_shape) == len(v_shape):
            raise ShapeError(
                f"query, key and value must all be batched (3-D) or all unbatched (2-D), got "
                f"{format_shape(q_shape)}, {format_shape(k_shape)}, {format_shape(v_shape)}",
                layer=self.describe())
        for name, dims, want in (("query", q, self.embed_dim), ("key", k, self.key_dim),
                                 ("value", v, self.value_dim)):
            if dims.features != want:
                raise ShapeError(f"{name} has {dims.features} features, expected {want}",
                                 layer=self.describe(), numbers={f"{name}_features": dims.features})
        if k.batch != q.batch or v.batch != q.batch:
            raise ShapeError(f"key/value batch ({k.batch}, {v.batch}) differs from the query's ({q.batch})",
                             layer=self.describe())
        if k.length != v.length:
            raise ShapeError(f"key has {k.length} positions but value has {v.length}; they must match",
                             layer=self.describe(), numbers={"key_length": k.length, "value_length": v.length})
        return q, k, v

    def attended_length(self, key_length: int) -> int:
        """Positions each query attends to: the keys, plus one per ``add_bias_kv``/``add_zero_attn``."""
        return key_length + int(self.add_bias_kv) + int(self.add_zero_attn)

    def output_shape(self, *inputs: Shape) -> Shape:
        q, _, _ = self._dims(inputs)
        return q.shape()

    def extra_outputs(self, *inputs: Shape) -> tuple[tuple[str, Shape], ...]:
        """``forward`` returns ``(attn_output, attn_output_weights)``; the weights (averaged over
        heads, torch's default ``need_weights=True``) are ``(N, L, S)``, ``(L, S)`` unbatched."""
        q, k, _ = self._dims(inputs)
        s = self.attended_length(k.length)
        return (("attn_output_weights", (q.length, s) if q.batch is None else (q.batch, q.length, s)),)

    def param_tensors(self, *inputs: Shape) -> int:
        projections = 1 if self.key_dim == self.value_dim == self.embed_dim else 3
        return projections + 1 + 2 * int(self.bias) + 2 * int(self.add_bias_kv)

    def param_count(self, *inputs: Shape) -> int:
        e, b = self.embed_dim, int(self.bias)
        in_proj = e * (e + self.key_dim + self.value_dim) + 3 * e * b
        out_proj = e * e + e * b
        return in_proj + out_proj + (2 * e if self.add_bias_kv else 0)

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        q, k, v = self._dims(inputs)
        e, b = self.embed_dim, int(self.bias)
        n, s = q.samples, self.attended_length(k.length)
        projections = n * (q.length * (e + b) * e + k.length * (self.key_dim + b) * e
                           + v.length * (self.value_dim + b) * e)
        attention = 2 * n * q.length * s * e  # QKᵀ and A·V over all heads: heads × head_dim = E
        out_proj = n * q.length * (e + b) * e
        return projections + attention + out_proj

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Every query attends to every key of its sequence (a mask is not a layer argument:
        a call with one is measured, not this layer); see :func:`attention_steps`."""
        q, _, _ = self._dims(inputs)
        return attention_steps(inputs[0], self.output_shape(*inputs), q.length_axis)

    def describe(self) -> str:
        extra = [f"{name}={value}" for name, value in (("kdim", self.kdim), ("vdim", self.vdim))
                 if value is not None]
        extra += [flag for flag in ("add_bias_kv", "add_zero_attn") if getattr(self, flag)]
        extra += [] if self.bias else ["bias=False"]
        return f"MultiheadAttention({self.embed_dim}, heads={self.num_heads}{''.join(', ' + e for e in extra)})"

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        q, k, _ = self._dims(inputs)
        s = self.attended_length(k.length)
        head = self.embed_dim // self.num_heads
        return [
            f"{self.num_heads} heads × head_dim {head} = embed_dim {self.embed_dim}",
            f"Q, K, V projections: {q.length} query and {k.length} key/value positions → {self.embed_dim}",
            f"QKᵀ per head: {q.length}×{head} · {head}×{s} → {q.length}×{s}; "
            f"A·V per head: {q.length}×{s} · {s}×{head} → {q.length}×{head}",
            f"heads concatenated and projected: {format_shape(output)}",
        ]


@dataclass(frozen=True)
class ScaledDotProductAttention(Layer):
    """``F.scaled_dot_product_attention(query, key, value, attn_mask=None, ...)``.

    ``query`` is ``(..., L, E)``, ``key`` ``(..., S, E)``, ``value`` ``(..., S, Ev)``; the output is
    ``(..., L, Ev)``. With ``enable_gqa`` the key/value heads (dim -3) are repeated to the query's.
    ``is_causal`` masks half the scores but the matmuls still run in full, and are counted so.
    """

    dropout_p: float = 0.0
    is_causal: bool = False
    scale: float | None = None
    enable_gqa: bool = False

    kind: ClassVar[LayerKind] = LayerKind.LINEAR
    arity: ClassVar[int] = 0  # query, key, value and an optional attn_mask

    def __post_init__(self) -> None:
        check_probability(self, "dropout_p", self.dropout_p)

    def _batch(self, q: Shape, k: Shape, v: Shape) -> Shape:
        if min(len(q), len(k), len(v)) < 2:
            raise ShapeError("query, key and value must be at least 2-D (..., L, E)", layer=self.describe())
        if q[-1] != k[-1]:
            raise ShapeError(f"query has {q[-1]} features and key {k[-1]}; QKᵀ needs them equal",
                             layer=self.describe(), numbers={"query_features": q[-1], "key_features": k[-1]})
        if k[-2] != v[-2]:
            raise ShapeError(f"key has {k[-2]} positions but value has {v[-2]}; they must match",
                             layer=self.describe(), numbers={"key_length": k[-2], "value_length": v[-2]})
        kb, vb = k[:-2], v[:-2]
        if self.enable_gqa and len(q) >= 3 and len(k) >= 3 and len(v) >= 3:
            hq, hk, hv = q[-3], k[-3], v[-3]
            if hq % hk or hq % hv:
                raise ShapeError(f"query heads {hq} must be a multiple of key heads {hk} and value heads {hv}",
                                 layer=self.describe(), numbers={"query_heads": hq, "key_heads": hk})
            kb, vb = kb[:-1] + (hq,), vb[:-1] + (hq,)
        qk = broadcast_shapes(q[:-2], kb)
        batch = None if qk is None else broadcast_shapes(qk, vb)
        if batch is None:
            raise ShapeError(
                f"batch dims of query {format_shape(q)}, key {format_shape(k)} and value "
                f"{format_shape(v)} do not broadcast", layer=self.describe())
        return batch

    def describe(self) -> str:
        flags = [f for f, on in (("causal", self.is_causal), ("gqa", self.enable_gqa)) if on]
        return f"ScaledDotProductAttention({', '.join(flags)})"

    def _qkv(self, inputs: tuple[Shape, ...]) -> tuple[Shape, Shape, Shape]:
        if len(inputs) not in (3, 4):
            raise ShapeError(f"takes query, key, value (and attn_mask), got {len(inputs)} inputs",
                             layer=self.describe())
        return inputs[0], inputs[1], inputs[2]

    def output_shape(self, *inputs: Shape) -> Shape:
        q, k, v = self._qkv(inputs)
        return self._batch(q, k, v) + (q[-2], v[-1])

    def saved(self, grad, output: Shape, *inputs: Shape):
        """Without a mask or dropout torch runs a flash kernel (CPU and GPU): it keeps query,
        key, value, the output and a float32 log-sum-exp per query row. A mask or dropout
        may pick the math path, which keeps the attention matrix: no rule here."""
        from shapecalc.core.layers.saved import OUTPUT, Kept, Saved, new

        if not grad.active:
            return ()
        if len(inputs) > 3 or self.dropout_p:
            return None
        q = inputs[0]
        return (Saved(Kept.INPUT, 0), Saved(Kept.INPUT, 1), Saved(Kept.INPUT, 2), OUTPUT,
                new(q[:-1], "float32"))

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        q, k, v = self._qkv(inputs)
        batch = prod(self._batch(q, k, v))
        return batch * q[-2] * k[-2] * (q[-1] + v[-1])  # QKᵀ + A·V

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Positions on the query's second-to-last axis (:func:`attention_steps`). A causal
        mask lets query i read keys up to i only: no rule."""
        if self.is_causal:
            return FieldRule.UNKNOWN
        return attention_steps(inputs[0], self.output_shape(*inputs), len(inputs[0]) - 2)

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        q, k, v = self._qkv(inputs)
        return [f"QKᵀ: {q[-2]}×{q[-1]} · {k[-1]}×{k[-2]} → {q[-2]}×{k[-2]}; "
                f"A·V: {q[-2]}×{k[-2]} · {v[-2]}×{v[-1]} → {q[-2]}×{v[-1]}"]


@dataclass(frozen=True)
class TransformerEncoderLayer(Layer):
    """``nn.TransformerEncoderLayer``: self-attention and a two-Linear feed-forward, each with a
    residual and a LayerNorm (after it, or before it with ``norm_first``). One node: its parts
    are the engine's own layers, so their counts are the ones those layers give alone."""

    d_model: int
    nhead: int
    dim_feedforward: int = 2048
    dropout: float = 0.1
    activation: str = "relu"
    layer_norm_eps: float = 1e-5
    batch_first: bool = False
    norm_first: bool = False
    bias: bool = True

    kind: ClassVar[LayerKind] = LayerKind.LINEAR
    ACTIVATIONS: ClassVar[tuple[str, ...]] = ("relu", "gelu")

    def __post_init__(self) -> None:
        check_positive(self, d_model=self.d_model, nhead=self.nhead, dim_feedforward=self.dim_feedforward)
        check_probability(self, "dropout", self.dropout)
        if self.activation not in self.ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(self.ACTIVATIONS)}, got {self.activation!r}",
                              layer=self.describe())
        self.parts()  # embed_dim / num_heads divisibility, said by MultiheadAttention

    def parts(self) -> tuple[MultiheadAttention, Linear, Linear, LayerNorm]:
        """The submodules torch builds: self_attn, linear1, linear2 and (twice) the norm."""
        return (
            MultiheadAttention(self.d_model, self.nhead, self.dropout, bias=self.bias,
                               batch_first=self.batch_first),
            Linear(self.d_model, self.dim_feedforward, self.bias),
            Linear(self.dim_feedforward, self.d_model, self.bias),
            LayerNorm(self.d_model, self.layer_norm_eps, bias=self.bias),
        )

    def output_shape(self, *inputs: Shape) -> Shape:
        return self.parts()[0].output_shape(inputs[0])

    def param_count(self, *inputs: Shape) -> int:
        attn, linear1, linear2, norm = self.parts()
        return (attn.param_count(*inputs) + linear1.param_count() + linear2.param_count()
                + 2 * norm.param_count())

    def param_tensors(self, *inputs: Shape) -> int:
        attn, linear1, linear2, norm = self.parts()
        return (attn.param_tensors() + linear1.param_tensors() + linear2.param_tensors()
                + 2 * norm.param_tensors())

    def mac_count(self, output: Shape, *inputs: Shape) -> int:
        attn, linear1, linear2, norm = self.parts()
        x = inputs[0]
        hidden = linear1.output_shape(x)
        return (attn.mac_count(output, x) + linear1.mac_count(hidden, x)
                + linear2.mac_count(output, hidden) + 2 * norm.mac_count(output, output))

    def field_steps(self, *inputs: Shape) -> FieldSteps:
        """Its self-attention's: the feed-forward, the norms and the residuals read each
        position alone."""
        return self.parts()[0].field_steps(inputs[0])

    def describe(self) -> str:
        extra = [] if self.activation == "relu" else [self.activation]
        extra += [flag for flag in ("norm_first",) if self.norm_first]
        extra += [] if self.bias else ["bias=False"]
        return (f"TransformerEncoderLayer({self.d_model}, heads={self.nhead}, ff={self.dim_feedforward}"
                f"{''.join(', ' + e for e in extra)})")

    def explain(self, output: Shape, *inputs: Shape) -> list[str]:
        order = "norm → attention → add, norm → feed-forward → add" if self.norm_first else \
            "attention → add → norm, feed-forward → add → norm"
        return [order, f"feed-forward: {self.d_model} → {self.dim_feedforward} ({self.activation}) → {self.d_model}"]


ATTENTION_LAYERS: tuple[type[Layer], ...] = (MultiheadAttention, ScaledDotProductAttention,
                                              TransformerEncoderLayer)
