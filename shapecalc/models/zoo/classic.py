"""Models in the layouts of their papers and of torchvision (``torchvision.models``).

torchvision's layouts are what most pretrained weights and published parameter counts refer
to, so these specs reproduce its module names (``features.0``, ``layer3``, ``fc``) where the
spec tree allows; residual blocks add ``body``/``shortcut``/``post`` levels. torchvision is not
needed: its published parameter counts are checked as numbers in the tests.
"""

from __future__ import annotations

from shapecalc.core.blocks import Residual, Sequential
from shapecalc.core.layers import (
    AdaptiveAvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear, LocalResponseNorm,
    MaxPool2d, ReLU,
)
from shapecalc.models.zoo import register


@register(
    "alexnet-2012",
    default_input=(1, 3, 227, 227),
    description="AlexNet as in the paper: 96 11×11/4 filters, LRN, two-group convs, 1000 classes",
    source="Krizhevsky, Sutskever & Hinton, ImageNet Classification with Deep CNNs, NeurIPS 2012 (§3, Fig. 2)",
)
def alexnet_2012(num_classes: int = 1000) -> Sequential:
    # The paper's two GPU towers are groups=2 on conv2, conv4 and conv5 (conv3 and the Linear
    # layers see both towers). 227 (not the paper's stated 224) is what makes 11×11/4 give 55.
    # LRN: torch (like Caffe's reference model) divides alpha by size; the paper's formula
    # would be alpha=5e-4 here. Shapes and costs are the same either way.
    lrn = lambda: LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)  # noqa: E731
    return Sequential(
        conv1=Conv2d(3, 96, 11, stride=4), relu1=ReLU(), norm1=lrn(), pool1=MaxPool2d(3, stride=2),
        conv2=Conv2d(96, 256, 5, padding=2, groups=2), relu2=ReLU(), norm2=lrn(),
        pool2=MaxPool2d(3, stride=2),
        conv3=Conv2d(256, 384, 3, padding=1), relu3=ReLU(),
        conv4=Conv2d(384, 384, 3, padding=1, groups=2), relu4=ReLU(),
        conv5=Conv2d(384, 256, 3, padding=1, groups=2), relu5=ReLU(), pool5=MaxPool2d(3, stride=2),
        flatten=Flatten(),
        fc6=Linear(256 * 6 * 6, 4096), relu6=ReLU(), drop6=Dropout(0.5),
        fc7=Linear(4096, 4096), relu7=ReLU(), drop7=Dropout(0.5),
        fc8=Linear(4096, num_classes),
    )


@register(
    "alexnet-torchvision",
    default_input=(1, 3, 224, 224),
    description="torchvision's AlexNet: 64-channel first conv, AdaptiveAvgPool2d(6×6), 9216 flatten",
    source="torchvision.models.alexnet (the 'One weird trick' variant, Krizhevsky 2014)",
)
def alexnet_torchvision(num_classes: int = 1000, dropout: float = 0.5) -> Sequential:
    return Sequential(
        features=Sequential(
            Conv2d(3, 64, 11, stride=4, padding=2), ReLU(inplace=True), MaxPool2d(3, stride=2),
            Conv2d(64, 192, 5, padding=2), ReLU(inplace=True), MaxPool2d(3, stride=2),
            Conv2d(192, 384, 3, padding=1), ReLU(inplace=True),
            Conv2d(384, 256, 3, padding=1), ReLU(inplace=True),
            Conv2d(256, 256, 3, padding=1), ReLU(inplace=True), MaxPool2d(3, stride=2),
        ),
        avgpool=AdaptiveAvgPool2d((6, 6)),
        flatten=Flatten(),  # torchvision calls torch.flatten(x, 1) in forward
        classifier=Sequential(
            Dropout(dropout), Linear(256 * 6 * 6, 4096), ReLU(inplace=True),
            Dropout(dropout), Linear(4096, 4096), ReLU(inplace=True),
            Linear(4096, num_classes),
        ),
    )


@register(
    "vgg16",
    default_input=(1, 3, 224, 224),
    description="torchvision's VGG-16 (configuration D): 13 convs, AdaptiveAvgPool2d(7×7), 25,088 flatten",
    source="torchvision.models.vgg16 (Simonyan & Zisserman 2014, configuration D)",
)
def vgg16(num_classes: int = 1000, dropout: float = 0.5) -> Sequential:
    features = []
    in_channels = 3
    for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
        if v == "M":
            features.append(MaxPool2d(2, stride=2))
        else:
            features += [Conv2d(in_channels, v, 3, padding=1), ReLU(inplace=True)]
            in_channels = v
    # Flat `features` indices, as torchvision's state_dict keys (`features.28.weight`).
    return Sequential(
        features=Sequential(*features),
        avgpool=AdaptiveAvgPool2d((7, 7)),
        flatten=Flatten(),
        classifier=Sequential(
            Linear(512 * 7 * 7, 4096), ReLU(inplace=True), Dropout(dropout),
            Linear(4096, 4096), ReLU(inplace=True), Dropout(dropout),
            Linear(4096, num_classes),
        ),
    )


def _bottleneck(inplanes: int, planes: int, stride: int = 1) -> Residual:
    """torchvision's Bottleneck (ResNet v1.5: the stride sits on the 3×3 conv)."""
    width, out = planes, planes * 4
    body = Sequential(
        conv1=Conv2d(inplanes, width, 1, bias=False), bn1=BatchNorm2d(width), relu1=ReLU(inplace=True),
        conv2=Conv2d(width, width, 3, stride=stride, padding=1, bias=False), bn2=BatchNorm2d(width),
        relu2=ReLU(inplace=True),
        conv3=Conv2d(width, out, 1, bias=False), bn3=BatchNorm2d(out),
    )
    shortcut = None
    if stride != 1 or inplanes != out:  # torchvision's `downsample`
        shortcut = Sequential(Conv2d(inplanes, out, 1, stride=stride, bias=False), BatchNorm2d(out))
    return Residual(body, shortcut=shortcut, post=ReLU(inplace=True), label="Bottleneck")


@register(
    "resnet50",
    default_input=(1, 3, 224, 224),
    description="torchvision's ResNet-50: bottleneck blocks [3, 4, 6, 3], 1000 classes",
    source="torchvision.models.resnet50 (He et al. 2016, v1.5 stride placement)",
)
def resnet50(num_classes: int = 1000) -> Sequential:
    layers: dict = {}
    inplanes = 64
    for i, (planes, blocks) in enumerate(((64, 3), (128, 4), (256, 6), (512, 3)), start=1):
        stride = 1 if i == 1 else 2
        stage = []
        for b in range(blocks):
            stage.append(_bottleneck(inplanes, planes, stride if b == 0 else 1))
            inplanes = planes * 4
        layers[f"layer{i}"] = Sequential(*stage, label="Stage")
    return Sequential({
        "conv1": Conv2d(3, 64, 7, stride=2, padding=3, bias=False), "bn1": BatchNorm2d(64),
        "relu": ReLU(inplace=True), "maxpool": MaxPool2d(3, stride=2, padding=1),
        **layers,
        "avgpool": AdaptiveAvgPool2d((1, 1)), "flatten": Flatten(),
        "fc": Linear(512 * 4, num_classes),
    })
