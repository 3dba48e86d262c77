"""Models as the d2l book (Dive into Deep Learning, d2l.ai, PyTorch edition) defines them.

The book builds its networks from ``nn.LazyConv2d`` / ``nn.LazyLinear``, so input sizes are
left ``None`` here too and derived from the input: the same spec serves Fashion-MNIST at the
book's input size and any other size the engine accepts. Where the book gives a module a name
(``b1`` … ``b5``, ``dense_blk1``, ``tran_blk1``, ``last``) the spec uses it, so node paths read
like the book's code.
"""

from __future__ import annotations

from shapecalc.core.blocks import Branches, Residual, Sequential
from shapecalc.core.layers import (
    AdaptiveAvgPool2d, AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten, Linear,
    MaxPool2d, ReLU, Sigmoid,
)
from shapecalc.models.zoo import register


@register(
    "alexnet",
    default_input=(1, 1, 224, 224),
    description="AlexNet as in d2l §8.1: Fashion-MNIST at 224×224, 10 classes",
    source="d2l.ai chapter 8.1 (Krizhevsky et al. 2012, one tower, 1 input channel)",
)
def alexnet(num_classes: int = 10, in_channels: int = 1) -> Sequential:
    # The first Linear's in_features is derived from the input (6400 at 224, 9216 at 227),
    # so the same spec serves every input size the engine accepts.
    return Sequential(
        Conv2d(in_channels, 96, 11, stride=4, padding=1), ReLU(), MaxPool2d(3, stride=2),
        Conv2d(96, 256, 5, padding=2), ReLU(), MaxPool2d(3, stride=2),
        Conv2d(256, 384, 3, padding=1), ReLU(),
        Conv2d(384, 384, 3, padding=1), ReLU(),
        Conv2d(384, 256, 3, padding=1), ReLU(), MaxPool2d(3, stride=2),
        Flatten(),
        Linear(None, 4096), ReLU(), Dropout(0.5),
        Linear(4096, 4096), ReLU(), Dropout(0.5),
        Linear(4096, num_classes),
    )


@register(
    "lenet",
    default_input=(1, 1, 28, 28),
    description="LeNet-5 as in d2l §7.6: sigmoid, average pooling, padding 2 on the first conv",
    source="d2l.ai chapter 7.6 (LeCun et al. 1998)",
)
def lenet(num_classes: int = 10) -> Sequential:
    # Indexed like the book's nn.Sequential, so `net.0` here is `net.0` there.
    return Sequential(
        Conv2d(None, 6, 5, padding=2), Sigmoid(), AvgPool2d(2, stride=2),
        Conv2d(None, 16, 5), Sigmoid(), AvgPool2d(2, stride=2),
        Flatten(),
        Linear(None, 120), Sigmoid(),
        Linear(None, 84), Sigmoid(),
        Linear(None, num_classes),
    )


@register(
    "lenet-bn",
    default_input=(1, 1, 28, 28),
    description="LeNet with batch normalisation after every conv and hidden Linear (d2l §8.5)",
    source="d2l.ai chapter 8.5, BNLeNet (Ioffe & Szegedy 2015)",
)
def lenet_bn(num_classes: int = 10) -> Sequential:
    # The book's BNLeNet drops LeNet's padding=2: 28 → 24 → 12 → 8 → 4, so Flatten gives 256.
    return Sequential(
        Conv2d(None, 6, 5), BatchNorm2d(), Sigmoid(), AvgPool2d(2, stride=2),
        Conv2d(None, 16, 5), BatchNorm2d(), Sigmoid(), AvgPool2d(2, stride=2),
        Flatten(),
        Linear(None, 120), BatchNorm1d(), Sigmoid(),
        Linear(None, 84), BatchNorm1d(), Sigmoid(),
        Linear(None, num_classes),
    )


def _vgg_block(num_convs: int, out_channels: int) -> Sequential:
    layers: dict = {}
    for i in range(1, num_convs + 1):
        layers[f"conv{i}"] = Conv2d(None, out_channels, 3, padding=1)
        layers[f"relu{i}"] = ReLU()
    layers["pool"] = MaxPool2d(2, stride=2)
    return Sequential(layers, label="VGGBlock")


@register(
    "vgg11",
    default_input=(1, 1, 224, 224),
    description="VGG-11 as in d2l §8.2 at full width (64…512 channels), 10 classes",
    source="d2l.ai chapter 8.2, VGG(arch=((1,64),(1,128),(2,256),(2,512),(2,512))) (Simonyan & Zisserman 2014)",
)
def vgg11(num_classes: int = 10) -> Sequential:
    arch = ((1, 64), (1, 128), (2, 256), (2, 512), (2, 512))
    blocks = {f"block{i}": _vgg_block(n, c) for i, (n, c) in enumerate(arch, start=1)}
    return Sequential({
        **blocks,
        "flatten": Flatten(),
        "fc1": Linear(None, 4096), "relu1": ReLU(), "drop1": Dropout(0.5),
        "fc2": Linear(None, 4096), "relu2": ReLU(), "drop2": Dropout(0.5),
        "fc3": Linear(None, num_classes),
    })


def _nin_block(out_channels: int, kernel_size: int, stride: int, padding: int) -> Sequential:
    return Sequential(
        conv=Conv2d(None, out_channels, kernel_size, stride=stride, padding=padding), relu=ReLU(),
        conv1x1a=Conv2d(None, out_channels, 1), relu_a=ReLU(),
        conv1x1b=Conv2d(None, out_channels, 1), relu_b=ReLU(),
        label="NiNBlock",
    )


@register(
    "nin",
    default_input=(1, 1, 224, 224),
    description="Network in Network as in d2l §8.3: 1×1 convs, global average pooling, no Linear",
    source="d2l.ai chapter 8.3 (Lin et al. 2013)",
)
def nin(num_classes: int = 10) -> Sequential:
    return Sequential(
        nin1=_nin_block(96, 11, 4, 0), pool1=MaxPool2d(3, stride=2),
        nin2=_nin_block(256, 5, 1, 2), pool2=MaxPool2d(3, stride=2),
        nin3=_nin_block(384, 3, 1, 1), pool3=MaxPool2d(3, stride=2),
        dropout=Dropout(0.5),
        nin4=_nin_block(num_classes, 3, 1, 1),
        gap=AdaptiveAvgPool2d((1, 1)), flatten=Flatten(),
    )


def _inception(c1: int, c2: tuple[int, int], c3: tuple[int, int], c4: int) -> Branches:
    """d2l's Inception: four paths on one input, concatenated along channels."""
    return Branches(
        p1=Sequential(conv=Conv2d(None, c1, 1), relu=ReLU()),
        p2=Sequential(conv1=Conv2d(None, c2[0], 1), relu1=ReLU(),
                      conv2=Conv2d(None, c2[1], 3, padding=1), relu2=ReLU()),
        p3=Sequential(conv1=Conv2d(None, c3[0], 1), relu1=ReLU(),
                      conv2=Conv2d(None, c3[1], 5, padding=2), relu2=ReLU()),
        p4=Sequential(pool=MaxPool2d(3, stride=1, padding=1), conv=Conv2d(None, c4, 1), relu=ReLU()),
        label="Inception",
    )


@register(
    "googlenet",
    default_input=(1, 1, 96, 96),
    description="GoogLeNet as in d2l §8.4: nine Inception blocks, Fashion-MNIST at 96×96",
    source="d2l.ai chapter 8.4 (Szegedy et al. 2015)",
)
def googlenet(num_classes: int = 10) -> Sequential:
    pool = lambda: MaxPool2d(3, stride=2, padding=1)  # noqa: E731 - one definition, many uses
    return Sequential(
        b1=Sequential(conv=Conv2d(None, 64, 7, stride=2, padding=3), relu=ReLU(), pool=pool()),
        b2=Sequential(conv1=Conv2d(None, 64, 1), relu1=ReLU(),
                      conv2=Conv2d(None, 192, 3, padding=1), relu2=ReLU(), pool=pool()),
        b3=Sequential(inception1=_inception(64, (96, 128), (16, 32), 32),
                      inception2=_inception(128, (128, 192), (32, 96), 64), pool=pool()),
        b4=Sequential(inception1=_inception(192, (96, 208), (16, 48), 64),
                      inception2=_inception(160, (112, 224), (24, 64), 64),
                      inception3=_inception(128, (128, 256), (24, 64), 64),
                      inception4=_inception(112, (144, 288), (32, 64), 64),
                      inception5=_inception(256, (160, 320), (32, 128), 128), pool=pool()),
        b5=Sequential(inception1=_inception(256, (160, 320), (32, 128), 128),
                      inception2=_inception(384, (192, 384), (48, 128), 128),
                      gap=AdaptiveAvgPool2d((1, 1)), flatten=Flatten()),
        fc=Linear(None, num_classes),
    )


def _d2l_residual(num_channels: int, use_1x1conv: bool = False, stride: int = 1) -> Residual:
    """d2l's Residual: two 3×3 convs with BN; a strided 1×1 conv (with bias, no BN) when the
    shape changes; ReLU after the addition."""
    body = Sequential(
        conv1=Conv2d(None, num_channels, 3, stride=stride, padding=1), bn1=BatchNorm2d(), relu=ReLU(),
        conv2=Conv2d(None, num_channels, 3, padding=1), bn2=BatchNorm2d(),
    )
    shortcut = Conv2d(None, num_channels, 1, stride=stride) if use_1x1conv else None
    return Residual(body, shortcut=shortcut, post=ReLU(), label="Residual")


@register(
    "resnet18",
    default_input=(1, 1, 96, 96),
    description="ResNet-18 as in d2l §8.6: 4 stages of 2 residual blocks, Fashion-MNIST at 96×96",
    source="d2l.ai chapter 8.6, ResNet18 (He et al. 2016)",
)
def resnet18(num_classes: int = 10) -> Sequential:
    stages: dict = {}
    for i, channels in enumerate((64, 128, 256, 512)):
        first = i == 0  # the first stage keeps 64 channels and the size: no 1×1 shortcut
        stages[f"b{i + 2}"] = Sequential(
            _d2l_residual(channels, use_1x1conv=not first, stride=1 if first else 2),
            _d2l_residual(channels),
            label="Stage",
        )
    return Sequential({
        "b1": Sequential(conv=Conv2d(None, 64, 7, stride=2, padding=3), bn=BatchNorm2d(), relu=ReLU(),
                         pool=MaxPool2d(3, stride=2, padding=1)),
        **stages,
        "last": Sequential(gap=AdaptiveAvgPool2d((1, 1)), flatten=Flatten(), fc=Linear(None, num_classes)),
    })


def _dense_block(num_convs: int, growth_rate: int) -> Sequential:
    """d2l's DenseBlock: each layer's output is concatenated onto its input (``cat([x, f(x)])``)."""
    layer = lambda: Branches(  # noqa: E731
        identity=Sequential(),
        conv_block=Sequential(bn=BatchNorm2d(), relu=ReLU(), conv=Conv2d(None, growth_rate, 3, padding=1)),
        label="DenseLayer",
    )
    return Sequential(*[layer() for _ in range(num_convs)], label="DenseBlock")


def _transition_block(num_channels: int) -> Sequential:
    return Sequential(bn=BatchNorm2d(), relu=ReLU(), conv=Conv2d(None, num_channels, 1),
                      pool=AvgPool2d(2, stride=2), label="Transition")


@register(
    "densenet",
    default_input=(1, 1, 96, 96),
    description="DenseNet as in d2l §8.7: 4 dense blocks of 4 layers, growth rate 32, Fashion-MNIST at 96×96",
    source="d2l.ai chapter 8.7 (Huang et al. 2017)",
)
def densenet(num_classes: int = 10, num_channels: int = 64, growth_rate: int = 32,
             arch: tuple[int, ...] = (4, 4, 4, 4)) -> Sequential:
    parts: dict = {
        "b1": Sequential(conv=Conv2d(None, 64, 7, stride=2, padding=3), bn=BatchNorm2d(), relu=ReLU(),
                         pool=MaxPool2d(3, stride=2, padding=1)),
    }
    for i, num_convs in enumerate(arch):
        parts[f"dense_blk{i + 1}"] = _dense_block(num_convs, growth_rate)
        num_channels += num_convs * growth_rate
        if i != len(arch) - 1:  # the book halves the channels between dense blocks
            num_channels //= 2
            parts[f"tran_blk{i + 1}"] = _transition_block(num_channels)
    parts["last"] = Sequential(bn=BatchNorm2d(), relu=ReLU(), gap=AdaptiveAvgPool2d((1, 1)),
                               flatten=Flatten(), fc=Linear(None, num_classes))
    return Sequential(parts)
