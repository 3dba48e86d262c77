"""Designing a layer backwards: which padding gives the output size you want?

``solve_padding`` inverts the output formula; the answers form a run of ``s`` consecutive
TOTAL paddings (a ``range``), and only the even ones are expressible as torch's symmetric
``padding=``.
``dropped_pixels`` says what the stride throws away. Every answer is checked forwards.

Run: ``python examples/padding_solver.py``
"""

from __future__ import annotations

from shapecalc import conv_output_size, dropped_pixels, same_padding, solve_padding


def design(n: int, k: int, s: int, target: int) -> None:
    totals = solve_padding(n, k, s, target)
    if not totals:
        print(f"n={n} k={k} s={s}: no padding gives {target}")
        return
    for p in totals:  # check every answer with the forward formula
        assert conv_output_size(n, k, s, p) == target
    symmetric = [p for p in totals if p % 2 == 0]
    torch_args = ", ".join(f"padding={p // 2}" for p in symmetric) or "none (pad asymmetrically)"
    print(f"n={n} k={k} s={s} → {target}: total p in {list(totals)}; nn.Conv2d: {torch_args}")


def main() -> None:
    design(224, 11, 4, 54)   # AlexNet's first layer: p = 2 is padding=1
    design(224, 11, 4, 56)   # a round 56 needs padding=4 or 5
    design(32, 4, 1, 32)     # an even kernel keeps the size only with odd, asymmetric padding
    design(224, 3, 2, 112)   # the usual stride-2 halving: padding=1
    design(224, 11, 4, 40)   # impossible: p = 0 already gives 54, padding only adds

    left, right = same_padding(4)
    print(f"padding='same' for k=4: {left} left, {right} right (torch puts the odd pixel right)")
    print(f"AlexNet conv1 at 224 drops {dropped_pixels(224, 11, 4, 2)} rows/columns")
    assert solve_padding(224, 11, 4, 54) == range(0, 3)
    assert not solve_padding(224, 11, 4, 40)
    assert solve_padding(32, 4, 1, 32) == range(3, 4)
    assert dropped_pixels(224, 11, 4, 2) == 3


if __name__ == "__main__":
    main()
