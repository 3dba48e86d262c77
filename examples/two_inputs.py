"""A forward with two inputs of two element types: an image and a row of token ids.

``shapecalc show examples/two_inputs.py:ImageText --input 1x3x32x32 --input 1x8:int64``: one
``--input`` per forward argument, in order, with ``:int64`` for the token ids the embedding
looks up.
"""

import torch
from torch import nn


class ImageText(nn.Module):
    def __init__(self, vocab: int = 1000, dim: int = 32, num_classes: int = 10):
        super().__init__()
        self.image = nn.Sequential(nn.Conv2d(3, dim, 3, stride=2, padding=1), nn.ReLU(),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.tokens = nn.Embedding(vocab, dim)
        self.head = nn.Linear(2 * dim, num_classes)

    def forward(self, image, tokens):
        text = self.tokens(tokens).mean(dim=1)
        return self.head(torch.cat([self.image(image), text], dim=1))


if __name__ == "__main__":
    import shapecalc

    print(shapecalc.analyze(ImageText(), [(1, 3, 32, 32), (1, 8)],
                            input_dtypes=["float32", "int64"]).table())
