"""Where Fashion-MNIST is found, in order, and the download into the user cache.

Order: ``--data-dir`` (an explicit choice: it must hold the files), ``$SHAPECALC_DATA``, the
user cache (``$XDG_CACHE_HOME`` or ``~/.cache``, then ``shapecalc/fashion-mnist``) and
Debian's ``/usr/share/datasets/fashion-mnist`` (package ``dataset-fashion-mnist``). Existing
copies are preferred to a download; only when none exists is the cache filled from the
official source. The download streams to ``<file>.part``, resumes it with an HTTP Range
request on a retry, checks the official md5 and renames atomically, so a half-written file
is never mistaken for data.
"""

from __future__ import annotations

import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

from shapecalc.train.data import FILES, FashionMNIST, file_path, load_fashion_mnist, synthetic
from shapecalc.train.errors import DataError

OFFICIAL_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
HOW_TO_GET = (
    "get it with `apt-get install dataset-fashion-mnist`, pass --data-dir to a folder holding "
    "the four .gz files, or run once online to download it into the cache"
)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "shapecalc" / "fashion-mnist"


def missing_files(directory: Path) -> list[str]:
    return [f.name + ".gz" for f in FILES if file_path(directory, f) is None]


def candidates(data_dir: str | Path | None) -> list[tuple[str, Path]]:
    """Every place looked at, labelled with why it is looked at."""
    places = []
    if data_dir is not None:
        places.append(("--data-dir", Path(data_dir).expanduser()))
    if os.environ.get("SHAPECALC_DATA"):
        places.append(("$SHAPECALC_DATA", Path(os.environ["SHAPECALC_DATA"]).expanduser()))
    places.append(("cache", cache_dir()))
    places.append(("Debian", DEBIAN_DIR))
    return places


def locate(data_dir: str | Path | None = None, download: bool | None = None) -> Path:
    """The first folder holding all four files, downloading into the cache when none does."""
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        missing = missing_files(path)
        if missing:
            raise DataError(f"--data-dir {path}: missing {', '.join(missing)}; {HOW_TO_GET}")
        return path
    places = candidates(None)
    for _label, path in places:
        if not missing_files(path):
            return path
    if download is None:
        download = os.environ.get("SHAPECALC_NO_DOWNLOAD", "") in ("", "0")
    target = cache_dir()
    failure = "downloads disabled by SHAPECALC_NO_DOWNLOAD"
    if download:
        try:
            fetch_all(target, os.environ.get("SHAPECALC_DATA_URL", OFFICIAL_URL))
            return target
        except DataError as err:
            failure = str(err)
    looked = ", ".join(f"{label} {path}" for label, path in places)
    raise DataError(f"Fashion-MNIST not found (looked in {looked}; {failure}); {HOW_TO_GET}")


def fetch_all(target: Path, base_url: str, timeout: float = 30.0) -> None:
    """Download every missing official file into ``target`` (created if needed)."""
    target.mkdir(parents=True, exist_ok=True)
    for spec in FILES:
        if file_path(target, spec) is None:
            fetch(base_url.rstrip("/") + "/" + spec.name + ".gz", target / (spec.name + ".gz"),
                  spec.md5_gz, timeout)


def fetch(url: str, dest: Path, md5: str, timeout: float = 30.0, chunk: int = 1 << 20) -> None:
    """Stream ``url`` to ``dest`` via ``dest.part``, resuming a partial one, checking ``md5``."""
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            resumed = have > 0 and response.status == 206
            digest = hashlib.md5()
            if resumed:
                with part.open("rb") as old:
                    for block in iter(lambda: old.read(chunk), b""):
                        digest.update(block)
            with part.open("ab" if resumed else "wb") as out:
                for block in iter(lambda: response.read(chunk), b""):
                    digest.update(block)
                    out.write(block)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the partial file is already whole (or longer): recheck
            digest = hashlib.md5(part.read_bytes())
        else:
            raise DataError(f"downloading {url}: HTTP {err.code} {err.reason}") from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DataError(f"downloading {url}: {reason} (partial file kept for a retry)") from None
    if digest.hexdigest() != md5:
        part.unlink(missing_ok=True)
        raise DataError(f"downloading {url}: md5 {digest.hexdigest()} is not the official {md5}")
    os.replace(part, dest)


def load_for(config) -> tuple[FashionMNIST, str]:
    """The data a run's config asks for, and a line saying where it came from."""
    if config.synthetic:
        n_train = min(config.limit_train or 60000, 60000)
        n_test = min(config.limit_test or 10000, 10000)
        return synthetic(n_train, n_test, config.seed), "synthetic (random pixels and labels)"
    directory = locate(config.data_dir)
    return load_fashion_mnist(directory), f"{directory} (official checksums verified)"
