"""From torchinfo to shapecalc: the same call, the same totals, the table without a forward pass.

d2l's LeNet with its first layer frozen; ``shapecalc.summary`` takes torchinfo's arguments under
torchinfo's names, and its totals equal torchinfo's (checked here, with torchinfo installed).

Run: ``python examples/torchinfo_migration.py``
"""

from torch import nn

import shapecalc

net = nn.Sequential(                   # d2l's LeNet, its first layer frozen
    nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
    nn.AvgPool2d(kernel_size=2, stride=2),
    nn.Flatten(),
    nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
    nn.Linear(120, 84), nn.Sigmoid(),
    nn.Linear(84, 10))
net[0].requires_grad_(False)

columns = ("output_size", "num_params", "trainable")
after = shapecalc.summary(net, input_size=(1, 1, 28, 28), col_names=columns)  # prints the table

try:
    from torchinfo import summary
except ImportError:  # torchinfo is optional: the comparison needs it, the table does not
    summary = None
if summary is not None:
    before = summary(net, input_size=(1, 1, 28, 28), col_names=columns, verbose=0)
    assert (after.total_params, after.trainable_params, after.total_mult_adds) == \
           (before.total_params, before.trainable_params, before.total_mult_adds)
    print("torchinfo's totals: the same")
