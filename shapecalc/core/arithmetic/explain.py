"""Explanations: the forward rules' arithmetic with the user's numbers substituted, one line a
step, so a student can redo each step by hand (``shapecalc layer --explain``, ``show --explain``).
"""

from __future__ import annotations

from shapecalc.core.argcheck import flag as _flag
from shapecalc.core.arithmetic.forward import checked_int as _int
from shapecalc.core.arithmetic.forward import (
    ceil_div, conv_output_size, dropped_pixels, effective_kernel, pool_output_size, tf_same_padding,
    transposed_conv_output_size,
)


def explain_dropped(
    n: int, k: int, s: int = 1, p: int = 0, d: int = 1, ceil_mode: bool = False
) -> str:
    """The arithmetic of :func:`dropped_pixels` with the numbers substituted."""
    dropped = dropped_pixels(n, k, s, p, d, ceil_mode)  # checks the arguments first
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    span = effective_kernel(k, d)
    if not ceil_mode:
        return f"({n:,} − {span:,} + {p:,}) mod {s:,} = {dropped:,}"
    out = pool_output_size(n, k, s, p, d, ceil_mode=True)
    return f"{n:,} + {p:,} − (({out:,} − 1)·{s:,} + {span:,}) = {dropped:,}"


def explain_conv(n: int, k: int, s: int = 1, p: int = 0, d: int = 1) -> list[str]:
    """The arithmetic of :func:`conv_output_size`, one line a step."""
    out = conv_output_size(n, k, s, p, d)  # checks the arguments first
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    lines = []
    if d != 1:
        lines.append(f"k_eff = d·(k − 1) + 1 = {d:,}·({k:,} − 1) + 1 = {effective_kernel(k, d):,}")
    span = effective_kernel(k, d)
    total = n - span + p + s
    k_name = "k_eff" if d != 1 else "k"
    lines.append(f"out = floor((n − {k_name} + p + s) / s)")
    lines.append(
        f"    = floor(({n:,} − {span:,} + {p:,} + {s:,}) / {s:,}) = floor({total:,} / {s:,}) = {out:,}"
    )
    return lines


def explain_pool(
    n: int, k: int, s: int, p: int = 0, d: int = 1, ceil_mode: bool = False
) -> list[str]:
    """The arithmetic of :func:`pool_output_size`, with the ceil-mode correction spelled out."""
    if not _flag("ceil_mode", ceil_mode):
        return explain_conv(n, k, s, p, d)
    out = pool_output_size(n, k, s, p, d, ceil_mode=True)  # checks the arguments first
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    span = effective_kernel(k, d)
    raw = -(-(n - span + p) // s) + 1
    lines = [
        "out = ceil((n − k_eff + p) / s) + 1",
        f"    = ceil(({n:,} − {span:,} + {p:,}) / {s:,}) + 1 = {raw:,}",
    ]
    if out != raw:
        lines.append(
            f"last window would start at ({raw:,} − 1)·{s:,} = {(raw - 1) * s:,} ≥ n + p_left = "
            f"{n + p // 2:,}, inside the right padding only: torch drops it → {out:,}"
        )
    return lines


def explain_tf_same(n: int, k: int, s: int = 1, d: int = 1) -> str:
    """How much TensorFlow ``'SAME'`` padding input size ``n`` gets (:func:`tf_same_padding`)."""
    before, after = tf_same_padding(n, k, s, d)  # checks the arguments first
    n, s = _int("n", n), _int("s", s)
    span = effective_kernel(k, d)
    return (f"TF 'SAME': p = max((ceil(n / s) − 1)·s + k_eff − n, 0) = "
            f"max(({ceil_div(n, s):,} − 1)·{s:,} + {span:,} − {n:,}, 0) = {before + after:,}"
            f" ({before:,} before, {after:,} after)")


def explain_transposed(
    n: int, k: int, s: int = 1, p: int = 0, d: int = 1, output_padding: int = 0
) -> list[str]:
    """The arithmetic of :func:`transposed_conv_output_size`."""
    out = transposed_conv_output_size(n, k, s, p, d, output_padding)  # checks the arguments first
    n, k, s, p, d = _int("n", n), _int("k", k), _int("s", s), _int("p", p), _int("d", d)
    output_padding = _int("output_padding", output_padding)
    return [
        "out = (n − 1)·s − p + d·(k − 1) + output_padding + 1",
        f"    = ({n:,} − 1)·{s:,} − {p:,} + {d:,}·({k:,} − 1) + {output_padding:,} + 1 = {out:,}",
    ]


__all__ = ["explain_conv", "explain_dropped", "explain_pool", "explain_tf_same", "explain_transposed"]
