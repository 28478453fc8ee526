"""MNIST and Fashion-MNIST from the standard IDX files, CIFAR-10 and CIFAR-100 from
their binary distributions (:mod:`hnviz.data.cifar`); no torchvision, nothing pickled.

An MNIST-like dataset is the four files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzip-compressed (``.gz``,
preferred when both exist) or raw. :func:`load_dataset` looks for them in
:func:`search_dirs` order and uses the first directory that holds all four:

1. ``data_dir`` (its subfolder ``<name>``, then the directory itself),
2. ``$HNVIZ_DATA`` (likewise),
3. the user cache ``$XDG_CACHE_HOME/hnviz/<name>`` (default ``~/.cache/hnviz/<name>``),
4. for Fashion-MNIST, Debian's ``/usr/share/datasets/fashion-mnist`` (package
   ``dataset-fashion-mnist``).

MNIST and Fashion-MNIST use the same file names: keep them in separate ``<name>`` folders.
With ``download=True`` missing files are fetched from ``DATASETS[name]["mirrors"]`` (in
order) into the cache, checked against the official MD5 and only then renamed into place.

CIFAR's files (``data_batch_1.bin`` ... ``test_batch.bin``; ``train.bin``, ``test.bin``)
are found the same way, also in a search folder's ``cifar-10-batches-bin`` or
``cifar-100-binary`` subfolder (what the archive unpacks to): ``tar xzf
cifar-10-binary.tar.gz -C ~/.cache/hnviz/cifar10`` works as it is. ``download=True``
fetches the archive, checks its MD5 and writes only the data files from it.

The MD5s are those of the files on the mirrors. Debian's copies hold the same IDX data but
their gzip headers were rewritten when the package was built (file name dropped, time
stamp reset), so their MD5s differ; local files are therefore checked by parsing
(:func:`read_idx`), never by checksum.
"""
from __future__ import annotations

import functools
import hashlib
import http.client
import logging
import math
import os
import urllib.request
import zlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from . import cifar
from ..io.safeio import atomic_write, read_regular

log = logging.getLogger(__name__)

BASENAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
             "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
FILES = tuple(f"{b}.gz" for b in BASENAMES)
IMAGE_SHAPE = (28, 28)
N_CLASSES = 10
ENV_VAR = "HNVIZ_DATA"
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
TIMEOUT_S = 60.0  # per HTTP request
_IDX_UINT8 = 0x08
_GZIP_MAGIC = b"\x1f\x8b"

# Read at call time: tests (or users behind a proxy) may replace "mirrors" and "md5".
DATASETS: dict[str, dict[str, Any]] = {
    "mnist": {
        "title": "MNIST",
        "format": "idx",
        "basenames": BASENAMES,
        "subdirs": (),
        "files": FILES,
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/"],
        "md5": {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
                "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
                "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"},
        "system_dirs": (),
        "debian_package": None,
    },
    "fashion_mnist": {
        "title": "Fashion-MNIST",
        "format": "idx",
        "basenames": BASENAMES,
        "subdirs": (),
        "files": FILES,
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "md5": {"train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
                "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
                "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310"},
        "system_dirs": (DEBIAN_FASHION_MNIST,),
        "debian_package": "dataset-fashion-mnist",
    },
    "cifar10": {
        "title": "CIFAR-10",
        "format": "cifar10",
        "basenames": cifar.CIFAR10_FILES,
        "subdirs": ("cifar-10-batches-bin",),
        "mirrors": ["https://www.cs.toronto.edu/~kriz/"],
        "archive": "cifar-10-binary.tar.gz",
        "md5": {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"},
        "system_dirs": (),
        "debian_package": None,
    },
}
DATASETS["cifar100"] = {
    **DATASETS["cifar10"], "title": "CIFAR-100", "format": "cifar100_fine",
    "basenames": cifar.CIFAR100_FILES, "subdirs": ("cifar-100-binary",),
    "archive": "cifar-100-binary.tar.gz",
    "md5": {"cifar-100-binary.tar.gz": "03b5dce01913d631647c71ecec9e9cb8"}}
# the same files with the 20 superclasses as labels (found in and downloaded to "cifar100")
DATASETS["cifar100_coarse"] = {**DATASETS["cifar100"], "title": "CIFAR-100 (coarse labels)",
                               "format": "cifar100_coarse", "folder": "cifar100"}
IDX_DATASETS = tuple(n for n, spec in DATASETS.items() if spec["format"] == "idx")
_ALIASES = {"cifar_10": "cifar10", "cifar_100": "cifar100", "cifar_100_coarse": "cifar100_coarse"}


class DownloadError(OSError):
    """Every mirror failed (network error or checksum mismatch) for one file."""


def _canonical(name: str) -> str:
    """``"Fashion-MNIST"`` -> ``"fashion_mnist"``; ValueError listing the choices if unknown."""
    key = str(name).strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    return key


# ----------------------------------------------------------------------------- IDX files

def _corrupt(path: Path, problem: str) -> ValueError:
    """A ValueError naming ``path``, what is wrong with it and how to get a good copy."""
    if any(path.is_relative_to(d) for spec in DATASETS.values() for d in spec["system_dirs"]):
        fix = "reinstall the Debian package: sudo apt-get install --reinstall dataset-fashion-mnist"
    else:
        fix = ("delete it and download it again (hnviz.data.load_dataset(name, download=True)) "
               "or copy a good one")
    return ValueError(f"{path} is not a valid IDX file: {problem}; {fix}")


MAX_IDX_BYTES = 2**30  # a dataset file, stored or unpacked (MNIST's largest is 47 MB)


def _decompress(path: Path, raw: bytes) -> bytes:
    """Gunzip ``raw`` if it is gzip data (checked by magic bytes, CRC and length), to at
    most ``MAX_IDX_BYTES`` (a small file that would expand to more is refused)."""
    if raw[:2] == _GZIP_MAGIC:
        gz = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = gz.decompress(raw, MAX_IDX_BYTES + 1)
        except zlib.error as e:
            raise _corrupt(path, f"damaged or truncated gzip data ({e})") from e
        if len(out) > MAX_IDX_BYTES or gz.unconsumed_tail:
            raise _corrupt(path, f"its gzip data expands to more than {MAX_IDX_BYTES:,} bytes")
        if not gz.eof:
            raise _corrupt(path, "damaged or truncated gzip data (it ends early)")
        return out
    if path.suffix == ".gz":
        raise _corrupt(path, "named .gz but not gzip-compressed")
    return raw


def read_idx(path: str | Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (gzip or raw); reads only, never writes.

    Layout: ``00 00 08 <ndim>``, ``ndim`` big-endian int32 sizes, then exactly
    ``prod(sizes)`` bytes. Returns a writable uint8 array of shape ``sizes``, e.g.
    (60000, 28, 28) for images or (60000,) for labels. Any deviation (bad gzip, magic,
    dtype code, truncated or over-long payload) raises ValueError naming ``path``.
    """
    path = Path(path)
    data = _decompress(path, read_regular(path, MAX_IDX_BYTES, "dataset file"))
    if len(data) < 4 or data[:2] != b"\x00\x00":
        raise _corrupt(path, f"bad magic {data[:4].hex() or '(empty)'}, expected 000008<ndim>")
    if data[2] != _IDX_UINT8:
        raise _corrupt(path, f"dtype code 0x{data[2]:02x}, expected 0x08 (unsigned byte)")
    ndim, header = data[3], 4 + 4 * data[3]
    if ndim == 0 or len(data) < header:
        raise _corrupt(path, f"header for {ndim} dimensions is incomplete ({len(data)} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(data, ">i4", count=ndim, offset=4))
    if min(dims) < 0:
        raise _corrupt(path, f"negative size in dimensions {dims}")
    expected = math.prod(dims)
    if len(data) - header != expected:
        raise _corrupt(path, f"payload has {len(data) - header} bytes but dimensions {dims} "
                             f"need {expected} (truncated or padded)")
    out = np.empty(dims, dtype=np.uint8)
    out.reshape(-1)[:] = np.frombuffer(memoryview(data)[header:], dtype=np.uint8)
    return out


# ----------------------------------------------------------------------------- locations

def cache_dir(name: str) -> Path:
    """Download target: ``$XDG_CACHE_HOME/hnviz/<name>`` or ``~/.cache/hnviz/<name>``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"
    name = _canonical(name)
    return root / "hnviz" / DATASETS[name].get("folder", name)


def search_dirs(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """Directories :func:`load_dataset` tries, in order (duplicates removed).

    ``data_dir`` and ``$HNVIZ_DATA`` each contribute their subfolder ``<name>`` and then
    themselves; then :func:`cache_dir`; then system copies (Debian's Fashion-MNIST).
    CIFAR's files are also looked for in each one's archive subfolder (see above).
    """
    name = _canonical(name)
    folder = DATASETS[name].get("folder", name)
    dirs: list[Path] = []
    for root in (data_dir, os.environ.get(ENV_VAR) or None):
        if root is not None:
            root = Path(root).expanduser()
            dirs += [root / folder, root]
    dirs += [cache_dir(name), *DATASETS[name]["system_dirs"]]
    dirs = [s for d in dirs for s in (d, *(d / sub for sub in DATASETS[name]["subdirs"]))]
    return list(dict.fromkeys(dirs))


def _find(directory: Path, basename: str, spec: dict[str, Any]) -> Path | None:
    """``directory/basename.gz`` or ``directory/basename``, whichever exists first (the
    raw name alone for a dataset that comes as an ``archive``: CIFAR's files are never
    gzipped one by one)."""
    packed = "archive" not in spec
    for candidate in (directory / f"{basename}.gz", directory / basename)[not packed:]:
        if candidate.is_file():
            return candidate
    return None


def _locate(name: str, dirs: list[Path]) -> list[Path] | None:
    """The files of dataset ``name`` (its ``basenames``, in order) from the first
    directory in ``dirs`` that holds all of them, else None."""
    for d in dirs:
        found = [_find(d, b, DATASETS[name]) for b in DATASETS[name]["basenames"]]
        if all(found):
            return found  # type: ignore[return-value]
    return None


def _not_found(name: str, dirs: list[Path]) -> FileNotFoundError:
    """FileNotFoundError listing each searched directory, what it lacks, and the fixes."""
    spec = DATASETS[name]
    names = spec["basenames"]
    lines = []
    for d in dirs:
        if d.is_dir():
            state = "lacks " + ", ".join(b for b in names if _find(d, b, spec) is None)
        else:
            state = "does not exist"
        lines.append(f"{d} ({state})")
    fixes = [(f"hnviz.data.load_dataset({name!r}, download=True) downloads it into "
              f"{cache_dir(name)}")]
    if spec["debian_package"]:
        fixes.append(f"sudo apt-get install {spec['debian_package']}")
    if "archive" in spec:
        fixes.append(f"unpack {spec['archive']} into {cache_dir(name)}")
    fixes.append(f"put the files in a directory and set {ENV_VAR}=<dir> (or pass data_dir)")
    packed = "" if "archive" in spec else " (.gz or raw)"
    return FileNotFoundError(
        f"{spec['title']} not found: no directory holds all of {', '.join(names)}{packed}."
        f"\nLooked in: " + "; ".join(lines) + "\nTo get it: " + "; or ".join(fixes))


# ----------------------------------------------------------------------------- download

MAX_DOWNLOAD_BYTES = 2**28  # the largest file fetched, CIFAR-10's archive, is 162 MB


def _fetch(url: str) -> bytes:
    """The body of ``url`` (raises OSError / HTTPException on network or HTTP errors, a
    ValueError for a body longer than ``MAX_DOWNLOAD_BYTES``, read no further)."""
    with urllib.request.urlopen(url, timeout=TIMEOUT_S) as response:
        body = response.read(MAX_DOWNLOAD_BYTES + 1)
    if len(body) > MAX_DOWNLOAD_BYTES:
        raise ValueError(f"the body is longer than {MAX_DOWNLOAD_BYTES:,} bytes, more than "
                         "any dataset file")
    return body


def _fetch_verified(name: str, filename: str, dest: Path) -> bytes:
    """The body of ``filename`` from the first of the mirrors whose copy has the right
    MD5 (checked in memory); a :class:`DownloadError` listing every try otherwise."""
    expected = DATASETS[name]["md5"][filename]
    reasons = []
    for base in DATASETS[name]["mirrors"]:
        url = base.rstrip("/") + "/" + filename
        log.info("downloading %s", url)
        try:
            payload = _fetch(url)
        except (OSError, http.client.HTTPException, ValueError) as e:
            reasons.append(f"{url}: {e}")
            continue
        digest = hashlib.md5(payload, usedforsecurity=False).hexdigest()
        if digest != expected:
            reasons.append(f"{url}: MD5 {digest} != expected {expected} ({len(payload)} bytes)")
            continue
        return payload
    tried = "\n  ".join(reasons) or "(no mirrors configured)"
    raise DownloadError(f"could not download {filename} for {DATASETS[name]['title']}; "
                        f"tried:\n  {tried}\nCheck the network or proxy, or put a copy with MD5 "
                        f"{expected} in {dest} yourself")


def download_dataset(name: str) -> Path:
    """Download the files of ``name`` that :func:`cache_dir` lacks; returns that directory.

    Each file is verified in memory and then written with
    :func:`hnviz.io.safeio.atomic_write` (temporary file in the folder + rename), so a
    failure leaves no partial file behind. CIFAR: the archive is verified, then its data
    files alone are written (:func:`hnviz.data.cifar.extract_archive`).
    """
    name = _canonical(name)
    spec, dest = DATASETS[name], cache_dir(name)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OSError(f"cannot create the download directory {dest}: {e}; set XDG_CACHE_HOME "
                      f"to a writable directory or download into {ENV_VAR} by hand") from e
    missing = [b for b in spec["basenames"] if _find(dest, b, spec) is None]
    if "archive" in spec:
        if missing:
            payload = _fetch_verified(name, spec["archive"], dest)
            cifar.extract_archive(payload, spec["archive"], spec["subdirs"][0],
                                  spec["basenames"], dest)
        return dest
    for basename, filename in zip(spec["basenames"], spec["files"], strict=True):
        if basename in missing:
            atomic_write(dest / filename, _fetch_verified(name, filename, dest))
    return dest


# ----------------------------------------------------------------------------- loading

def _load_split(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28) uint8 and labels (n,) int64 in 0..9, checked against each other."""
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"{images} holds an array of shape {x.shape}, expected (n, 28, 28) "
                         "images; is it the right file?")
    if y.shape != (len(x),):
        raise ValueError(f"{labels} holds shape {y.shape}, expected ({len(x)},) labels to match "
                         f"{images.name}; the files come from different datasets")
    if y.size and int(y.max()) >= N_CLASSES:
        raise ValueError(f"{labels} has label {int(y.max())}, expected 0..{N_CLASSES - 1}; "
                         "is it the right file?")
    return x, y.astype(np.int64)


def _stat_key(path: Path) -> tuple[str, int, int, int]:
    """(resolved path, inode, mtime_ns, size): a changed or replaced file gets a new key."""
    st = path.stat()
    return str(path.resolve()), st.st_ino, st.st_mtime_ns, st.st_size


def read_idx_dataset(paths: list[Path]) -> tuple[np.ndarray, ...]:
    """x_train, y_train, x_test, y_test from a dataset's four IDX files (in ``FILES``'
    order), each pair checked against the other."""
    return (*_load_split(paths[0], paths[1]), *_load_split(paths[2], paths[3]))


# a dataset's "format" names its reader: its "files", found in the search folders, in;
# x_train, y_train, x_test, y_test out (a new format: a reader here and its datasets)
READERS: dict[str, Callable[[list[Path]], tuple[np.ndarray, ...]]] = {
    "idx": read_idx_dataset, "cifar10": cifar.read_cifar10,
    "cifar100_fine": cifar.cifar100_reader("fine"),
    "cifar100_coarse": cifar.cifar100_reader("coarse")}


@functools.lru_cache(maxsize=4)
def _load_cached(fmt: str, key: tuple[tuple[str, int, int, int], ...]) -> tuple[np.ndarray, ...]:
    """Parse the files named in ``key`` (see :func:`_stat_key`) in ``fmt``; memoised."""
    return READERS[fmt]([Path(k[0]) for k in key])


def load_dataset(name: str, data_dir: str | Path | None = None, download: bool = False,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load a dataset of ``DATASETS`` as ``(x_train, y_train, x_test, y_test)``.

    Shapes: MNIST-like x_train (60000, 28, 28) uint8, y_train (60000,) int64, x_test
    (10000, 28, 28) uint8, y_test (10000,) int64 (other counts are accepted for custom
    files); CIFAR x_train (50000, 3, 32, 32) uint8 (channels first), y_train (50000,)
    int64, x_test (10000, 3, 32, 32), y_test (10000,): the classes (CIFAR-100: its 100
    fine classes; ``"cifar100_coarse"``: its 20 superclasses). The first of
    :func:`search_dirs` holding all four files wins; with ``download=True`` missing files are
    downloaded into :func:`cache_dir` instead of raising FileNotFoundError. Parsed arrays
    are cached in memory per file; each call returns fresh copies.
    """
    name = _canonical(name)
    dirs = search_dirs(name, data_dir)
    files = _locate(name, dirs)
    if files is None:
        if not download:
            raise _not_found(name, dirs)
        files = _locate(name, [download_dataset(name)])
        assert files is not None  # download_dataset fetched every missing file
    arrays = _load_cached(DATASETS[name]["format"], tuple(_stat_key(p) for p in files))
    return tuple(a.copy() for a in arrays)  # type: ignore[return-value]
