"""IDX reading and verification, data location and the resumable download (local server only)."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import random
import struct
import threading
from functools import partial
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from shapecalc.core.errors import ShapecalcError  # noqa: E402
from shapecalc.train import DataError  # noqa: E402
from shapecalc.train import locate as loc  # noqa: E402
from shapecalc.train.data import FILES, load_fashion_mnist, load_file, synthetic  # noqa: E402


def idx_bytes(magic: int, dims: tuple[int, ...], payload: bytes) -> bytes:
    return struct.pack(f">I{len(dims)}I", magic, *dims) + payload


def write_gz(path: Path, raw: bytes) -> Path:
    path.write_bytes(gzip.compress(raw))
    return path


TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = FILES


# -- the real data ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def real(fashion_mnist_dir):
    return load_fashion_mnist(fashion_mnist_dir)


def test_real_files_parse_with_official_sizes(real):
    assert tuple(real.train.images.shape) == (60000, 28, 28)
    assert tuple(real.test.images.shape) == (10000, 28, 28)
    assert real.train.images.dtype == torch.uint8 and real.verified
    assert len(real.train) == 60000 and len(real.test) == 10000


def test_real_class_balance(real):
    assert real.train.labels.long().bincount().tolist() == [6000] * 10
    assert real.test.labels.long().bincount().tolist() == [1000] * 10


def test_real_pixels_look_like_fashion_mnist(real):
    # The train-set mean pixel is 0.2860 (the constant the pipeline standardises with).
    mean = real.train.images.float().mean().item() / 255
    assert abs(mean - 0.2860) < 1e-3
    assert int(real.train.images.max()) == 255 and int(real.train.images.min()) == 0


def test_official_gz_md5s_match_the_table(fashion_mnist_dir):
    for spec in FILES:
        data = (fashion_mnist_dir / (spec.name + ".gz")).read_bytes()
        assert hashlib.md5(data).hexdigest() == spec.md5_gz
        assert hashlib.md5(gzip.decompress(data)).hexdigest() == spec.md5_raw


def test_recompressed_copy_is_accepted_by_its_uncompressed_md5(fashion_mnist_dir, tmp_path):
    raw = gzip.decompress((fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(raw, compresslevel=1, mtime=0))  # different .gz bytes
    assert hashlib.md5(path.read_bytes()).hexdigest() != TEST_LABELS.md5_gz
    labels = load_file(path, TEST_LABELS)
    assert labels.long().bincount().tolist() == [1000] * 10


def test_uncompressed_copy_is_accepted(fashion_mnist_dir, tmp_path):
    raw = gzip.decompress((fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    path = tmp_path / "t10k-labels-idx1-ubyte"
    path.write_bytes(raw)
    assert len(load_file(path, TEST_LABELS)) == 10000


# -- broken files, made here -------------------------------------------------------------
def test_wrong_magic_names_the_file(tmp_path):
    path = write_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(2051, (3,), bytes(3)))
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz: wrong magic number 2051 \(expected 2049"):
        load_file(path, TEST_LABELS)


def test_truncated_gzip_names_the_file(fashion_mnist_dir, tmp_path):
    data = (fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes()
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: truncated gzip file"):
        load_file(path, TEST_LABELS)


def test_corrupt_gzip_names_the_file(fashion_mnist_dir, tmp_path):
    data = bytearray((fashion_mnist_dir / "t10k-labels-idx1-ubyte.gz").read_bytes())
    data[100:140] = bytes(40)  # zero a run of the DEFLATE stream
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: (corrupt gzip|checksum mismatch|label)"):
        load_file(path, TEST_LABELS)


def test_not_gzip_at_all(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_text("<html>404 Not Found</html>")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz: not a gzip file"):
        load_file(path, TRAIN_LABELS)


def test_truncated_payload_is_a_size_mismatch(tmp_path):
    raw = idx_bytes(2051, (10, 28, 28), bytes(28 * 28 * 10))
    path = write_gz(tmp_path / "t10k-images-idx3-ubyte.gz", raw[:-100])
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz: IDX size mismatch: header says 10x28x28"):
        load_file(path, TEST_IMAGES)


def test_truncated_header(tmp_path):
    path = write_gz(tmp_path / "t10k-images-idx3-ubyte.gz", b"\x00\x00\x08\x03\x00")
    with pytest.raises(DataError, match="truncated IDX header"):
        load_file(path, TEST_IMAGES)


def test_wrong_image_dims(tmp_path):
    path = write_gz(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(2051, (2, 32, 32), bytes(2048)))
    with pytest.raises(DataError, match="images are 32x32, Fashion-MNIST's are 28x28"):
        load_file(path, TEST_IMAGES)


def test_wrong_count_and_wrong_bytes(tmp_path):
    short = write_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(2049, (5,), bytes(5)))
    with pytest.raises(DataError, match="holds 5 items, the official file has 10000"):
        load_file(short, TEST_LABELS)
    fake = write_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(2049, (10000,), bytes(10000)))
    with pytest.raises(DataError, match="checksum mismatch"):
        load_file(fake, TEST_LABELS)
    assert len(load_file(fake, TEST_LABELS, verify=False)) == 10000


def test_label_out_of_range(tmp_path):
    path = write_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(2049, (3,), bytes([1, 2, 12])))
    with pytest.raises(DataError, match="label 12 out of range 0..9"):
        load_file(path, TEST_LABELS, verify=False)


def test_image_label_count_mismatch(tmp_path):
    write_gz(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(2051, (2, 28, 28), bytes(2 * 784)))
    write_gz(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(2049, (3,), bytes(3)))
    write_gz(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(2051, (1, 28, 28), bytes(784)))
    write_gz(tmp_path / "t10k-labels-idx1-ubyte.gz", idx_bytes(2049, (1,), bytes(1)))
    with pytest.raises(DataError, match="train has 2 images but 3 labels"):
        load_fashion_mnist(tmp_path, verify=False)


def test_data_error_is_a_shapecalc_error():
    assert issubclass(DataError, ShapecalcError)  # so the CLI prints it as one line


def test_synthetic_has_fashion_mnist_shape():
    data = synthetic(64, 16, seed=1)
    assert tuple(data.train.images.shape) == (64, 28, 28) and data.train.images.dtype == torch.uint8
    assert int(data.test.labels.max()) <= 9 and len(data.test) == 16


# -- location ----------------------------------------------------------------------------
@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No env, an empty cache and no Debian folder, so only what a test puts there exists."""
    monkeypatch.delenv("SHAPECALC_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(loc, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.setenv("SHAPECALC_NO_DOWNLOAD", "1")
    return tmp_path


def _populate(directory: Path, source: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for spec in FILES:
        (directory / (spec.name + ".gz")).symlink_to(source / (spec.name + ".gz"))
    return directory


def test_search_order(isolated, fashion_mnist_dir, monkeypatch):
    debian = _populate(isolated / "debian", fashion_mnist_dir)
    assert loc.locate() == debian
    cache = _populate(loc.cache_dir(), fashion_mnist_dir)
    assert loc.locate() == cache
    env = _populate(isolated / "env", fashion_mnist_dir)
    monkeypatch.setenv("SHAPECALC_DATA", str(env))
    assert loc.locate() == env
    assert loc.locate(fashion_mnist_dir) == fashion_mnist_dir


def test_data_dir_missing_files_is_one_clear_error(isolated):
    (isolated / "some").mkdir()
    with pytest.raises(DataError, match=r"--data-dir .*some: missing train-images-idx3-ubyte.gz, .*apt-get install dataset-fashion-mnist"):
        loc.locate(isolated / "some")


def test_nothing_found_says_where_it_looked(isolated):
    with pytest.raises(DataError) as err:
        loc.locate()
    text = str(err.value)
    assert "cache" in text and str(isolated / "debian") in text and "SHAPECALC_NO_DOWNLOAD" in text
    assert "apt-get install dataset-fashion-mnist" in text and "--data-dir" in text


# -- download from a local server --------------------------------------------------------
class _Handler(http.server.SimpleHTTPRequestHandler):
    """Serves files with Range support; records the Range headers it saw."""

    ranges: list = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        type(self).ranges.append(rng)
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "served"
    root.mkdir()
    _Handler.ranges = []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_download_resumes_a_partial_file_and_checks_md5(server, tmp_path):
    root, url = server
    payload = random.Random(0).randbytes(50_000)
    (root / "x.gz").write_bytes(payload)
    dest = tmp_path / "dl" / "x.gz"
    dest.parent.mkdir()
    (tmp_path / "dl" / "x.gz.part").write_bytes(payload[:1000])  # an earlier, interrupted try
    loc.fetch(url + "x.gz", dest, hashlib.md5(payload).hexdigest())
    assert dest.read_bytes() == payload and not (tmp_path / "dl" / "x.gz.part").exists()
    assert _Handler.ranges == ["bytes=1000-"]


def test_download_with_wrong_md5_leaves_nothing(server, tmp_path):
    root, url = server
    (root / "x.gz").write_bytes(b"not the official bytes")
    dest = tmp_path / "x.gz"
    with pytest.raises(DataError, match="is not the official"):
        loc.fetch(url + "x.gz", dest, "0" * 32)
    assert not dest.exists() and not (tmp_path / "x.gz.part").exists()


def test_download_http_error_and_offline(server, tmp_path):
    _root, url = server
    with pytest.raises(DataError, match="HTTP 404"):
        loc.fetch(url + "missing.gz", tmp_path / "m.gz", "0" * 32)
    with pytest.raises(DataError, match="downloading http://127.0.0.1:9/"):
        loc.fetch("http://127.0.0.1:9/x.gz", tmp_path / "m.gz", "0" * 32, timeout=2)


def test_locate_downloads_into_the_cache(isolated, server, fashion_mnist_dir, monkeypatch):
    root, url = server
    for spec in FILES:
        (root / (spec.name + ".gz")).symlink_to(fashion_mnist_dir / (spec.name + ".gz"))
    monkeypatch.setenv("SHAPECALC_NO_DOWNLOAD", "0")
    monkeypatch.setenv("SHAPECALC_DATA_URL", url)
    found = loc.locate()
    assert found == loc.cache_dir()
    assert sorted(p.name for p in found.iterdir()) == sorted(s.name + ".gz" for s in FILES)
    assert len(load_fashion_mnist(found).test) == 10000


def test_gzip_bomb_is_refused_after_the_header(tmp_path):
    """A small .gz announcing 5 labels but inflating to 64 MB: read stops after 5 bytes + 1."""
    import gzip
    import time
    import zlib

    bomb = zlib.compressobj(1, zlib.DEFLATED, 31)  # gzip framing
    body = bomb.compress(idx_bytes(2049, (5,), bytes(5)))
    zeros = bytes(1 << 20)
    for _ in range(64):
        body += bomb.compress(zeros)
    body += bomb.flush()
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(body)
    assert len(body) < 1 << 20 and len(gzip.decompress(body)) > 64 << 20
    began = time.perf_counter()
    with pytest.raises(DataError, match=r"IDX size mismatch: header says 5 = 5 bytes of data, file holds more"):
        load_file(path, TEST_LABELS, verify=False)
    assert time.perf_counter() - began < 5


def test_header_announcing_too_much_is_refused_before_decompressing(tmp_path):
    path = write_gz(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(2051, (10**6, 28, 28), b""))
    with pytest.raises(DataError, match=r"header says 1000000x28x28 = 784,000,000 bytes of data, "
                                        r"more than any Fashion-MNIST file \(47,040,000\)"):
        load_file(path, FILES[0], verify=False)


def test_a_huge_data_file_is_refused_by_its_size_before_hashing(tmp_path):
    # issue 21: an 8 GiB file was hashed for 65 s before its header was read. A sparse file
    # of that size costs no disk and is refused from its size alone.
    from shapecalc.train.data import FILES, load_file

    big = tmp_path / "train-images-idx3-ubyte"
    with open(big, "wb") as fh:
        fh.truncate(8 * 2**30)
    with pytest.raises(DataError, match="8,589,934,592 bytes, more than any Fashion-MNIST file"):
        load_file(big, FILES[0])


def test_a_fifo_given_as_a_data_file_is_refused(tmp_path):
    import os

    from shapecalc.train.data import FILES, read_idx

    os.mkfifo(tmp_path / "train-images-idx3-ubyte.gz")
    with pytest.raises(DataError, match="FIFO"):
        read_idx(tmp_path / "train-images-idx3-ubyte.gz", FILES[0].magic, 3)
