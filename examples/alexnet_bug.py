"""d2l's AlexNet with torchvision's classifier pasted on: it expects 9216 features, gets 6400.

d2l pads the first convolution (``padding=1``), so at 224×224 the last pooling gives 256×5×5 =
6400 features; torchvision's AlexNet (no padding there, adaptive pooling) hands its classifier
256×6×6 = 9216. torch fails with ``mat1 and mat2 shapes cannot be multiplied``;
``shapecalc check examples/alexnet_bug.py:AlexNetBug --input 1x1x224x224`` says where and why.
"""

from torch import nn


class AlexNetBug(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 96, kernel_size=11, stride=4, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(96, 256, kernel_size=5, padding=2), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(256, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 384, kernel_size=3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Flatten())
        self.classifier = nn.Sequential(
            nn.Dropout(p=0.5), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(),
            nn.Dropout(p=0.5), nn.Linear(4096, 4096), nn.ReLU(),
            nn.Linear(4096, num_classes))

    def forward(self, x):
        return self.classifier(self.features(x))


if __name__ == "__main__":
    from shapecalc.diagnose import diagnose

    print(diagnose(AlexNetBug(), (1, 1, 224, 224)).summary())
