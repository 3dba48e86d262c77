"""A siamese pair: one shared trunk on two images, features concatenated into one Linear head.

The head was sized for 18×18 to 21×21 images (2 × 64×3×3 = 1152 features); at 32×32 it gets
4608.
``shapecalc check examples/siamese.py:Net --input 1x3x32x32 --input 1x3x32x32`` proposes the
``in_features`` to set, or one size for both inputs that fits the head as it is.
"""

import torch
from torch import nn


class Net(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.trunk = nn.Sequential(
            nn.Conv2d(3, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten())
        self.head = nn.Linear(1152, num_classes)

    def forward(self, left, right):
        return self.head(torch.cat([self.trunk(left), self.trunk(right)], dim=1))


if __name__ == "__main__":
    from shapecalc.diagnose import diagnose

    print(diagnose(Net(), [(1, 3, 32, 32), (1, 3, 32, 32)]).summary())
