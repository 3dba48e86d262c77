"""The d2l AlexNet chapter's shape printout, from the engine alone (no torch, no forward pass).

d2l §8.1 runs ``X = torch.randn(1, 1, 224, 224)`` through the network and prints every layer's
output shape; its ``get_output_size(n, k, s, p)`` helper checks two of them by hand. Both are
reproduced here with ``shapecalc``: the same lines, computed from the arithmetic.

Run: ``python examples/alexnet_layers.py``
"""

from __future__ import annotations

import shapecalc


def get_output_size(n: int, k: int, s: int, p: int) -> int:
    """The seed's helper: ``floor((n − k + p + s) / s)`` with ``p`` the TOTAL padding."""
    return shapecalc.conv_output_size(n, k, s, p)


def main() -> None:
    # The seed's hand checks: the first conv (k=11, s=4, padding=1 per side → p = 2) and the
    # first max-pool (k=3, s=2, no padding).
    assert get_output_size(224, 11, 4, 2) == 54
    assert get_output_size(54, 3, 2, 0) == 26
    print("get_output_size(224, 11, 4, 2) =", get_output_size(224, 11, 4, 2))
    print("get_output_size(54, 3, 2, 0) =", get_output_size(54, 3, 2, 0))
    print()

    result = shapecalc.analyze("alexnet", (1, 1, 224, 224))
    for record in result.records:
        # d2l: print(layer.__class__.__name__, 'output shape:\t', X.shape)
        print(record.type, "output shape:\t", f"torch.Size({list(record.output_shape)})")

    seed = [54, 26, 26, 12, 12, 12, 12, 5, 6400, 4096, 4096, 10]
    changing = [r.output_shape[-1] for r in result.records
                if r.type in ("Conv2d", "MaxPool2d", "Flatten", "Linear")]
    assert changing == seed, changing
    print()
    print(f"{result.total_params:,} parameters, {result.total_macs:,} MACs")


if __name__ == "__main__":
    main()
