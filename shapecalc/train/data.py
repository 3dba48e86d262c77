"""Fashion-MNIST straight from the four official IDX ``.gz`` files, verified before use.

No torchvision: the IDX format is a 4-byte magic, one big-endian uint32 per dimension and the
raw uint8 payload, so reading it is a header check and one buffer copy. Every way a file can
be wrong (not gzip, cut short, wrong magic, wrong dims, not the official bytes) is a
:class:`DataError` naming the file, raised before torch ever sees a tensor.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension
NUM_CLASSES = 10
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@dataclass(frozen=True)
class IdxFile:
    """One official file: its name, split, kind and the md5s that prove it is the release."""

    name: str  # without .gz
    split: str  # "train" / "test"
    kind: str  # "images" / "labels"
    count: int
    md5_gz: str  # the official checksum, of the .gz as published
    md5_raw: str  # of the uncompressed IDX, for copies re-compressed elsewhere

    @property
    def magic(self) -> int:
        return IMAGES_MAGIC if self.kind == "images" else LABELS_MAGIC


FILES = (
    IdxFile("train-images-idx3-ubyte", "train", "images", 60000,
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "f4a8712d7a061bf5bd6d2ca38dc4d50a"),
    IdxFile("train-labels-idx1-ubyte", "train", "labels", 60000,
            "25c81989df183df01b3e8a0aad5dffbe", "9018921c3c673c538a1fc5bad174d6f9"),
    IdxFile("t10k-images-idx3-ubyte", "test", "images", 10000,
            "bef4ecab320f06d8554ea6380940ec79", "8181f5470baa50b63fa0f6fddb340f0a"),
    IdxFile("t10k-labels-idx1-ubyte", "test", "labels", 10000,
            "bb300cfdad3c16e7a12a480ee83cd310", "15d484375f8d13e6eb1aabb0c3f46965"),
)
FILE_NAMES = tuple(f.name + ".gz" for f in FILES)


def file_path(directory: Path, spec: IdxFile) -> Path | None:
    """The ``.gz`` (or an already uncompressed copy) of ``spec`` in ``directory``, if present."""
    for candidate in (directory / (spec.name + ".gz"), directory / spec.name):
        if candidate.is_file():
            return candidate
    return None


def read_payload(path: Path) -> tuple[bytes, bool]:
    """The uncompressed IDX bytes of ``path`` and whether the file matched an official md5."""
    try:
        stored = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    spec = next((f for f in FILES if path.name in (f.name, f.name + ".gz")), None)
    official = spec is not None and hashlib.md5(stored).hexdigest() == spec.md5_gz
    if stored[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(stored)
        except EOFError:
            raise DataError(f"{path}: truncated gzip file (download it again)") from None
        except (OSError, zlib.error) as err:
            raise DataError(f"{path}: corrupt gzip data ({err}); download it again") from None
    elif path.suffix == ".gz":
        raise DataError(f"{path}: not a gzip file (starts with {stored[:4].hex()})")
    else:
        raw = stored
    if spec is not None and not official:
        official = hashlib.md5(raw).hexdigest() == spec.md5_raw
    return raw, official


def parse_idx(raw: bytes, path: Path, expected_magic: int, expected_dims: int) -> tuple[int, ...]:
    """Check the header of an IDX buffer and return its dimensions."""
    if len(raw) < 4 + 4 * expected_dims:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes)")
    (magic,) = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        raise DataError(
            f"{path}: wrong magic number {magic} (expected {expected_magic} for an IDX "
            f"{'image' if expected_magic == IMAGES_MAGIC else 'label'} file)"
        )
    dims = struct.unpack(f">{expected_dims}I", raw[4:4 + 4 * expected_dims])
    payload = 1
    for d in dims:
        payload *= d
    if len(raw) != 4 + 4 * expected_dims + payload:
        raise DataError(
            f"{path}: IDX size mismatch: header says {'x'.join(map(str, dims))} = {payload} bytes "
            f"of data, file holds {len(raw) - 4 - 4 * expected_dims}"
        )
    return dims


@dataclass
class Split:
    """One split as uint8 tensors: ``images`` (N, 28, 28) and ``labels`` (N,) in 0..9."""

    images: "object"
    labels: "object"

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass
class FashionMNIST:
    train: Split
    test: Split
    directory: Path | None = None
    verified: bool = True


def load_file(path: Path, spec: IdxFile, verify: bool = True):
    """Read, check and return one file as a uint8 tensor (images N×28×28, labels N)."""
    import torch

    raw, official = read_payload(path)
    if spec.kind == "images":
        dims = parse_idx(raw, path, IMAGES_MAGIC, 3)
        if dims[1:] != (28, 28):
            raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, Fashion-MNIST's are 28x28")
    else:
        dims = parse_idx(raw, path, LABELS_MAGIC, 1)
    if verify and dims[0] != spec.count:
        raise DataError(f"{path}: holds {dims[0]} items, the official file has {spec.count}")
    if verify and not official:
        raise DataError(
            f"{path}: checksum mismatch: neither the .gz md5 ({spec.md5_gz}) nor the "
            f"uncompressed md5 ({spec.md5_raw}) of the official release matches"
        )
    offset = 4 + 4 * len(dims)
    tensor = torch.frombuffer(bytearray(raw[offset:]), dtype=torch.uint8).reshape(dims)
    if spec.kind == "labels" and len(tensor) and int(tensor.max()) >= NUM_CLASSES:
        raise DataError(f"{path}: label {int(tensor.max())} out of range 0..{NUM_CLASSES - 1}")
    return tensor


def load_fashion_mnist(directory: Path, verify: bool = True) -> FashionMNIST:
    """All four files of ``directory``, verified; image and label counts must agree."""
    directory = Path(directory)
    tensors = {}
    for spec in FILES:
        path = file_path(directory, spec)
        if path is None:
            raise DataError(f"{directory}: {spec.name}.gz is missing")
        tensors[(spec.split, spec.kind)] = load_file(path, spec, verify)
    splits = {}
    for split in ("train", "test"):
        images, labels = tensors[(split, "images")], tensors[(split, "labels")]
        if len(images) != len(labels):
            raise DataError(
                f"{directory}: {split} has {len(images)} images but {len(labels)} labels"
            )
        splits[split] = Split(images, labels)
    return FashionMNIST(splits["train"], splits["test"], directory, verify)


def synthetic(train: int = 60000, test: int = 10000, seed: int = 0) -> FashionMNIST:
    """Random data of Fashion-MNIST's shape and dtype, for smoke tests and benchmarks."""
    import torch

    g = torch.Generator().manual_seed(seed)

    def split(n: int) -> Split:
        images = torch.randint(0, 256, (n, 28, 28), dtype=torch.uint8, generator=g)
        labels = torch.randint(0, NUM_CLASSES, (n,), dtype=torch.uint8, generator=g)
        return Split(images, labels)

    return FashionMNIST(split(train), split(test), None, False)
