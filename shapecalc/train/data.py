"""Fashion-MNIST straight from the four official IDX ``.gz`` files, verified before use.

No torchvision: the IDX format is a 4-byte magic, one big-endian uint32 per dimension and the
raw uint8 payload, so reading it is a header check and one buffer copy. Files are decompressed
as a stream: the header is checked first and no more data is read than it announces, so a
gzip bomb is refused after a few bytes. Every way a file can
be wrong (not gzip, cut short, wrong magic, wrong dims, not the official bytes) is a
:class:`DataError` naming the file, raised before torch ever sees a tensor.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from shapecalc.core.fileio import NotRegularFile, open_input
from shapecalc.train.errors import DataError

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


#: The most data bytes an IDX file may announce: the largest official file (60000 images of
#: 28×28). A header asking for more is refused before anything is decompressed, and no file
#: is ever decompressed past what its header announces (plus one byte, to see it ends there).
MAX_PAYLOAD = 60000 * 28 * 28
#: The largest file read at all: an uncompressed copy of the largest official file, with room
#: for its header (a gzip of it is smaller). Checked on the open file before anything is read.
MAX_FILE_BYTES = MAX_PAYLOAD + (1 << 16)
CHUNK = 1 << 20


def _md5_of(handle) -> str:
    handle.seek(0)
    digest = hashlib.md5()
    for block in iter(lambda: handle.read(CHUNK), b""):
        digest.update(block)
    return digest.hexdigest()


def _read(stream, n: int, path: Path) -> bytes:
    """Up to ``n`` decompressed bytes; gzip damage becomes one DataError naming the file."""
    try:
        return stream.read(n)
    except EOFError:
        raise DataError(f"{path}: truncated gzip file (download it again)") from None
    except (OSError, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip data ({err}); download it again") from None


def read_idx(path: Path, expected_magic: int, expected_dims: int) -> tuple[tuple[int, ...], bytes, bool]:
    """(dims, data bytes, matched an official md5) of one IDX file, ``.gz`` or not.

    The file must be a regular file of at most :data:`MAX_FILE_BYTES` (an 8 GiB file is
    refused by its size, not hashed first); the header is checked on the first decompressed
    bytes and the data read only up to the size it announces (at most :data:`MAX_PAYLOAD`),
    so a gzip bomb costs nothing; the md5 is taken last, of a file already known to be small.
    """
    try:
        handle = open_input(path)
    except NotRegularFile as err:
        raise DataError(f"{path}: {err.strerror}") from None
    except OSError as err:
        raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_FILE_BYTES:
            raise DataError(f"{path}: {size:,} bytes, more than any Fashion-MNIST file "
                            f"({MAX_FILE_BYTES:,}); not reading it")
        try:
            start = handle.read(4)
        except OSError as err:
            raise DataError(f"{path}: cannot read ({err.strerror or err})") from None
        handle.seek(0)
        compressed = start[:2] == b"\x1f\x8b"
        if not compressed and path.suffix == ".gz":
            raise DataError(f"{path}: not a gzip file (starts with {start.hex()})")
        spec = next((f for f in FILES if path.name in (f.name, f.name + ".gz")), None)
        stream = gzip.GzipFile(fileobj=handle, mode="rb") if compressed else handle
        dims, header, data = _idx_payload(stream, path, expected_magic, expected_dims)
        official = spec is not None and _md5_of(handle) == spec.md5_gz
    if spec is not None and not official:
        official = hashlib.md5(header + data).hexdigest() == spec.md5_raw
    return dims, data, official


def _idx_payload(stream, path: Path, expected_magic: int, expected_dims: int
                 ) -> tuple[tuple[int, ...], bytes, bytes]:
    """(dims, header bytes, data bytes) read from ``stream``, the header checked first."""
    header = _read(stream, 4 + 4 * expected_dims, path)
    if len(header) >= 4:
        (magic,) = struct.unpack(">I", header[:4])
        if magic != expected_magic:
            raise DataError(
                f"{path}: wrong magic number {magic} (expected {expected_magic} for an IDX "
                f"{'image' if expected_magic == IMAGES_MAGIC else 'label'} file)"
            )
    if len(header) < 4 + 4 * expected_dims:
        raise DataError(f"{path}: truncated IDX header ({len(header)} bytes)")
    dims = struct.unpack(f">{expected_dims}I", header[4:])
    payload = 1
    for d in dims:
        payload *= d
    shape = "x".join(map(str, dims))
    if payload > MAX_PAYLOAD:
        raise DataError(f"{path}: IDX header says {shape} = {payload:,} bytes of data, more "
                        f"than any Fashion-MNIST file ({MAX_PAYLOAD:,}); not reading it")
    data = _read(stream, payload, path)
    if len(data) != payload:
        raise DataError(f"{path}: IDX size mismatch: header says {shape} = {payload} bytes "
                        f"of data, file holds {len(data)}")
    if _read(stream, 1, path):
        raise DataError(f"{path}: IDX size mismatch: header says {shape} = {payload} bytes "
                        "of data, file holds more")
    return dims, header, data


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

    if spec.kind == "images":
        dims, data, official = read_idx(path, IMAGES_MAGIC, 3)
        if dims[1:] != (28, 28):
            raise DataError(f"{path}: images are {dims[1]}x{dims[2]}, Fashion-MNIST's are 28x28")
    else:
        dims, data, official = read_idx(path, LABELS_MAGIC, 1)
    if verify and dims[0] != spec.count:
        raise DataError(f"{path}: holds {dims[0]} items, the official file has {spec.count}")
    if verify and not official:
        raise DataError(
            f"{path}: checksum mismatch: neither the .gz md5 ({spec.md5_gz}) nor the "
            f"uncompressed md5 ({spec.md5_raw}) of the official release matches"
        )
    tensor = torch.frombuffer(bytearray(data), dtype=torch.uint8).reshape(dims)
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
