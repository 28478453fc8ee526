"""CIFAR-10 and CIFAR-100 from their *binary* distributions (the archives the dataset's
page calls "binary version, suitable for C programs"); the pickled Python version is
never read.

An image is 3072 bytes: 1024 red, then 1024 green, then 1024 blue, each 32 rows of 32
pixels. A record is the image after its label byte(s):

- CIFAR-10 (``cifar-10-batches-bin/``): ``data_batch_1.bin`` .. ``data_batch_5.bin``
  (10,000 records each, the training set) and ``test_batch.bin`` (10,000); a record is
  one label byte (0..9) and the image, 3073 bytes.
- CIFAR-100 (``cifar-100-binary/``): ``train.bin`` (50,000 records) and ``test.bin``
  (10,000); a record is the coarse label (0..19), the fine label (0..99) and the image,
  3074 bytes.

Memory: the training images are 150 MiB as bytes (50,000 x 3072) and 600 MiB as float32;
the test images a fifth of that. A file is read whole into memory (at most
:data:`MAX_FILE_BYTES`) and checked before anything is returned.
"""
from __future__ import annotations

import io
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ..io.safeio import atomic_write, read_regular

SIDE, CHANNELS = 32, 3
IMAGE_BYTES = CHANNELS * SIDE * SIDE  # 3072
MAX_FILE_BYTES = 2**28  # CIFAR-100's train.bin, the largest, is 153,700,000 bytes
CIFAR10_TRAIN = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
CIFAR10_FILES = (*CIFAR10_TRAIN, "test_batch.bin")
CIFAR100_FILES = ("train.bin", "test.bin")
# label bytes per record and each label's number of classes
LABELS = {"cifar10": ((10, "label"),), "cifar100": ((20, "coarse label"), (100, "fine label"))}


def corrupt(path: Path, problem: str) -> ValueError:
    """A one-line ValueError naming ``path``, what is wrong and how to get a good copy."""
    return ValueError(f"{path} is not a valid CIFAR binary file: {problem}; delete it and "
                      "download it again (hnviz.load_dataset(name, download=True)) or copy a "
                      "good one")


def read_cifar_file(path: str | Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """One binary file of ``kind`` ("cifar10" or "cifar100"): images ``(N, 3, 32, 32)``
    uint8 and labels ``(N, L)`` int64 (L = 1: the class; CIFAR-100: coarse, fine).

    The file must be a whole number of records (none half-written), at least one, each
    label within its range; anything else raises a ValueError naming the file.
    """
    path = Path(path)
    labels = LABELS[kind]
    record = len(labels) + IMAGE_BYTES
    data = read_regular(path, MAX_FILE_BYTES, "CIFAR file")
    if not data or len(data) % record:
        raise corrupt(path, f"{len(data):,} bytes is not a whole number of {record}-byte "
                            "records (truncated, padded, or the other CIFAR's file)")
    rows = np.frombuffer(data, dtype=np.uint8).reshape(-1, record)
    y = rows[:, :len(labels)].astype(np.int64)
    for col, (n_classes, name) in enumerate(labels):
        top = int(y[:, col].max())
        if top >= n_classes:
            raise corrupt(path, f"record {int(np.argmax(y[:, col]))} has {name} {top}, "
                                f"expected 0..{n_classes - 1}")
    x = rows[:, len(labels):].reshape(-1, CHANNELS, SIDE, SIDE).copy()
    return x, y


def _joined(paths: list[Path], kind: str) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_cifar_file(p, kind) for p in paths]
    return np.concatenate([x for x, _ in parts]), np.concatenate([y for _, y in parts])


def read_cifar10(paths: list[Path]) -> tuple[np.ndarray, ...]:
    """x_train ``(50000, 3, 32, 32)`` uint8, y_train ``(50000,)`` int64, x_test, y_test
    from the six files in ``CIFAR10_FILES`` order."""
    x_tr, y_tr = _joined(list(paths[:5]), "cifar10")
    x_te, y_te = read_cifar_file(paths[5], "cifar10")
    return x_tr, y_tr[:, 0], x_te, y_te[:, 0]


def cifar100_reader(label: str):
    """The reader of CIFAR-100's two files with its ``label`` ("fine" or "coarse")."""
    col = {"coarse": 0, "fine": 1}[label]

    def read(paths: list[Path]) -> tuple[np.ndarray, ...]:
        x_tr, y_tr = read_cifar_file(paths[0], "cifar100")
        x_te, y_te = read_cifar_file(paths[1], "cifar100")
        return x_tr, y_tr[:, col], x_te, y_te[:, col]

    read.__doc__ = (f"CIFAR-100 with its {label} labels: x_train (50000, 3, 32, 32) uint8, "
                    "y_train (50000,) int64, x_test, y_test from train.bin and test.bin")
    return read


def extract_archive(archive: bytes, source: str, folder: str, names: tuple[str, ...],
                    dest: Path) -> None:
    """Write the members ``folder/name`` of the tar.gz ``archive`` into ``dest`` (each
    atomically, only those names, only regular files, each at most
    :data:`MAX_FILE_BYTES`); a member that is missing or of another kind raises a
    ValueError naming ``source``. Nothing outside ``dest`` is written: the names are
    ours, not the archive's."""
    found = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            for name in names:
                try:
                    member = tar.getmember(f"{folder}/{name}")
                except KeyError:
                    raise ValueError(f"{source} lacks {folder}/{name}; is it the CIFAR binary "
                                     "archive?") from None
                if not member.isfile() or member.size > MAX_FILE_BYTES:
                    raise ValueError(f"{source}: {folder}/{name} is not a regular file of at "
                                     f"most {MAX_FILE_BYTES:,} bytes")
                found[name] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
        raise ValueError(f"{source} is not a readable tar.gz archive ({e})") from None
    for name, payload in found.items():
        atomic_write(dest / name, payload)
