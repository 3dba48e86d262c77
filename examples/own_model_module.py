"""Your own nn.Module: the same table, a check against a real (meta) forward, and a diagnosis.

Run: python examples/own_model_module.py
"""

import torch.nn as nn
import torch.nn.functional as F

import shapecalc
from shapecalc.diagnose import compact, diagnose, scan_inputs
from shapecalc.models.torch_models import verify


class Block(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class Net(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(1, 16, 3, padding=1)
        self.stage = nn.Sequential(Block(16, 32, 2), Block(32, 64, 2))
        self.fc = nn.Linear(64 * 7 * 7, num_classes)

    def forward(self, x):
        x = self.stage(F.relu(self.stem(x)))
        return self.fc(x.view(x.size(0), -1))


net = Net()
result = shapecalc.analyze(net, (8, 1, 28, 28))  # traced with torch.fx: adds, views, F.relu
print(result.table(depth=2))

checks = verify(net, (8, 1, 28, 28))  # a real forward on the meta device: no memory, no compute
print(f"verify: {sum(c.ok for c in checks)}/{len(checks)} nodes agree with torch")

# The same model at 32×32 does not fit its Linear: shapecalc says why, and what would fix it.
d = diagnose(net, (8, 1, 32, 32))
print(d.summary())

scan = scan_inputs(net, (1, 1, 28, 28), 16, 64)
print("sizes that fit:", compact(scan.fits))
