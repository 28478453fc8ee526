"""CIFAR-10/100 binary readers on generated files of the real format (and, once, the real
size): bit-exact images in channel-first order, labels (CIFAR-100's coarse and fine),
the search folders, the archive download (from a file:// mirror) and damaged files."""
from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest

from hnviz.data import cifar
from hnviz.data import datasets as data

KINDS = {"cifar10": ("cifar-10-batches-bin", cifar.CIFAR10_FILES, (10,)),
         "cifar100": ("cifar-100-binary", cifar.CIFAR100_FILES, (20, 100))}


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch) -> Path:
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def records(n: int, classes: tuple[int, ...], seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``n`` random records: the file's bytes, images (n, 3, 32, 32) and labels (n, L)
    drawn independently of the bytes' layout (each pixel written at its documented
    offset: label bytes, then channel * 1024 + row * 32 + column)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    y = np.stack([rng.integers(0, c, n) for c in classes], axis=1)
    L = len(classes)
    buf = bytearray(n * (L + 3072))
    for i in range(min(n, 3)):  # the first records by explicit offsets
        base = i * (L + 3072)
        buf[base:base + L] = bytes(int(v) for v in y[i])
        for c in range(3):
            for r in range(32):
                start = base + L + c * 1024 + r * 32
                buf[start:start + 32] = x[i, c, r].tobytes()
    rows = np.frombuffer(buf, dtype=np.uint8).reshape(n, L + 3072).copy()
    rows[3:, :L] = y[3:]
    rows[3:, L:] = x[3:].reshape(n - 3, -1) if n > 3 else rows[3:, L:]
    return rows.tobytes(), x, y


def write_dataset(folder: Path, kind: str, n: int, seed: int = 0) -> dict[str, tuple]:
    """Every file of ``kind`` with ``n`` records each under ``folder``; returns its arrays."""
    folder.mkdir(parents=True, exist_ok=True)
    _, files, classes = KINDS[kind]
    out = {}
    for i, name in enumerate(files):
        raw, x, y = records(n, classes, seed * 10 + i)
        (folder / name).write_bytes(raw)
        out[name] = (x, y)
    return out


def test_cifar10_reads_bit_for_bit(tmp_path):
    arrays = write_dataset(tmp_path / "cifar10", "cifar10", 7)
    x_tr, y_tr, x_te, y_te = data.load_dataset("cifar10", data_dir=tmp_path)
    assert x_tr.shape == (35, 3, 32, 32) and x_tr.dtype == np.uint8 and y_tr.dtype == np.int64
    want_x = np.concatenate([arrays[f][0] for f in cifar.CIFAR10_TRAIN])
    want_y = np.concatenate([arrays[f][1][:, 0] for f in cifar.CIFAR10_TRAIN])
    np.testing.assert_array_equal(x_tr, want_x)
    np.testing.assert_array_equal(y_tr, want_y)
    np.testing.assert_array_equal(x_te, arrays["test_batch.bin"][0])
    np.testing.assert_array_equal(y_te, arrays["test_batch.bin"][1][:, 0])


@pytest.mark.parametrize("name,col", [("cifar100", 1), ("CIFAR-100", 1), ("cifar100_coarse", 0)])
def test_cifar100_fine_and_coarse_labels(tmp_path, name, col):
    arrays = write_dataset(tmp_path / "cifar100", "cifar100", 6, seed=1)
    x_tr, y_tr, x_te, y_te = data.load_dataset(name, data_dir=tmp_path)
    np.testing.assert_array_equal(x_tr, arrays["train.bin"][0])
    np.testing.assert_array_equal(y_tr, arrays["train.bin"][1][:, col])
    np.testing.assert_array_equal(x_te, arrays["test.bin"][0])
    np.testing.assert_array_equal(y_te, arrays["test.bin"][1][:, col])


def test_found_in_the_archives_own_subfolder(tmp_path, isolated_env, monkeypatch):
    """What `tar xzf` leaves (cifar-10-batches-bin/) is found in the cache and in HNVIZ_DATA."""
    arrays = write_dataset(isolated_env / "hnviz" / "cifar10" / "cifar-10-batches-bin",
                           "cifar10", 4)
    np.testing.assert_array_equal(data.load_dataset("cifar10")[2], arrays["test_batch.bin"][0])
    write_dataset(tmp_path / "env" / "cifar-100-binary", "cifar100", 4)
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    assert data.load_dataset("cifar100_coarse")[1].max() < 20


def test_not_found_names_files_folders_and_fixes(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        data.load_dataset("cifar10", data_dir=tmp_path)
    msg = str(err.value)
    assert "data_batch_1.bin" in msg and "cifar-10-batches-bin" in msg
    assert "cifar-10-binary.tar.gz" in msg and "download=True" in msg


@pytest.mark.parametrize("damage,match", [
    (lambda raw: raw[:-1], "not a whole number of 3073-byte records"),
    (lambda raw: b"", "not a whole number"),
    (lambda raw: bytes([10]) + raw[1:], "record 0 has label 10, expected 0..9"),
    (lambda raw: raw + raw[:3073 + 1], "not a whole number"),
])
def test_damaged_files_give_one_line(tmp_path, damage, match):
    folder = tmp_path / "cifar10"
    write_dataset(folder, "cifar10", 3)
    path = folder / "data_batch_3.bin"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError) as err:
        data.load_dataset("cifar10", data_dir=tmp_path)
    msg = str(err.value)
    assert match in msg and str(path) in msg and "\n" not in msg


def test_cifar100_file_read_as_cifar10_is_refused(tmp_path):
    """A CIFAR-100 record is 3074 bytes: a file of them is not CIFAR-10 (3073)."""
    raw, _, _ = records(5, (20, 100), 0)  # 15,370 bytes: not a multiple of 3073
    path = tmp_path / "x.bin"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match="3073-byte records"):
        cifar.read_cifar_file(path, "cifar10")
    fine_over = bytearray(raw[:3074 * 2])
    fine_over[3074 + 1] = 100
    path.write_bytes(bytes(fine_over))
    with pytest.raises(ValueError, match="record 1 has fine label 100, expected 0..99"):
        cifar.read_cifar_file(path, "cifar100")


def test_a_fifo_is_refused_not_waited_on(tmp_path):
    folder = tmp_path / "cifar10"
    write_dataset(folder, "cifar10", 2)
    (folder / "test_batch.bin").unlink()
    os.mkfifo(folder / "test_batch.bin")
    with pytest.raises(FileNotFoundError, match=r"cifar10 \(lacks test_batch.bin\)"):
        data.load_dataset("cifar10", data_dir=tmp_path)  # the search skips it
    with pytest.raises(ValueError, match="not a regular file"):
        cifar.read_cifar_file(folder / "test_batch.bin", "cifar10")  # named directly


def archive(kind: str, n: int, extra: dict[str, bytes] | None = None) -> tuple[bytes, dict]:
    """A tar.gz as the dataset's page serves it (folder/file members), n records a file."""
    folder, files, classes = KINDS[kind]
    buf, arrays = io.BytesIO(), {}
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        members = {f"{folder}/{name}": records(n, classes, i) for i, name in enumerate(files)}
        for member, (raw, x, y) in members.items():
            arrays[member.split("/")[1]] = (x, y)
            info = tarfile.TarInfo(member)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
        for member, raw in (extra or {}).items():
            info = tarfile.TarInfo(member)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue(), arrays


@pytest.mark.parametrize("kind", ["cifar10", "cifar100"])
def test_download_writes_only_the_data_files(tmp_path, isolated_env, monkeypatch, kind):
    spec = data.DATASETS[kind]
    payload, arrays = archive(kind, 3, extra={"../escape.bin": b"x", "/abs.bin": b"y"})
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / spec["archive"]).write_bytes(payload)
    monkeypatch.setitem(spec, "mirrors", [(tmp_path / "mirror").as_uri()])
    monkeypatch.setitem(spec, "md5", {spec["archive"]: hashlib.md5(payload).hexdigest()})
    x_tr, y_tr, x_te, y_te = data.load_dataset(kind, download=True)
    test_name = KINDS[kind][1][-1]
    np.testing.assert_array_equal(x_te, arrays[test_name][0])
    written = sorted(p.name for p in (isolated_env / "hnviz" / kind).iterdir())
    assert written == sorted(KINDS[kind][1])
    assert not (isolated_env / "hnviz" / "escape.bin").exists() and not Path("/abs.bin").exists()


def test_download_with_a_wrong_md5_writes_nothing(tmp_path, isolated_env, monkeypatch):
    spec = data.DATASETS["cifar10"]
    payload, _ = archive("cifar10", 2)
    (tmp_path / "mirror").mkdir()
    (tmp_path / "mirror" / spec["archive"]).write_bytes(payload)
    monkeypatch.setitem(spec, "mirrors", [(tmp_path / "mirror").as_uri()])
    with pytest.raises(data.DownloadError, match="MD5"):
        data.load_dataset("cifar10", download=True)
    assert list((isolated_env / "hnviz" / "cifar10").iterdir()) == []


def test_an_archive_without_the_files_is_named(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-bin/readme.html")
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ValueError, match="lacks cifar-10-batches-bin/data_batch_1.bin"):
        cifar.extract_archive(buf.getvalue(), "x.tar.gz", "cifar-10-batches-bin",
                              cifar.CIFAR10_FILES, tmp_path)
    with pytest.raises(ValueError, match="not a readable tar.gz"):
        cifar.extract_archive(b"garbage", "x.tar.gz", "cifar-10-batches-bin",
                              cifar.CIFAR10_FILES, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_real_sizes_read_exactly(tmp_path):
    """Files of the real sizes (CIFAR-10: 6 x 10,000 records; CIFAR-100: 50,000 + 10,000):
    shapes, a spot check of every thousandth image and all labels."""
    arrays = write_dataset(tmp_path / "cifar10", "cifar10", 10000)
    assert (tmp_path / "cifar10" / "data_batch_1.bin").stat().st_size == 30_730_000
    x_tr, y_tr, x_te, y_te = data.load_dataset("cifar10", data_dir=tmp_path)
    assert x_tr.shape == (50000, 3, 32, 32) and x_te.shape == (10000, 3, 32, 32)
    np.testing.assert_array_equal(x_tr[40000::1000], arrays["data_batch_5.bin"][0][::1000])
    np.testing.assert_array_equal(y_te, arrays["test_batch.bin"][1][:, 0])
    folder = tmp_path / "cifar100"
    folder.mkdir()
    for name, n, seed in (("train.bin", 50000, 1), ("test.bin", 10000, 2)):
        raw, x, y = records(n, (20, 100), seed)
        (folder / name).write_bytes(raw)
        if name == "train.bin":
            want = (x, y)
    assert (folder / "train.bin").stat().st_size == 153_700_000
    x_tr, y_tr, _, _ = data.load_dataset("cifar100", data_dir=tmp_path)
    np.testing.assert_array_equal(x_tr[::997], want[0][::997])
    np.testing.assert_array_equal(y_tr, want[1][:, 1])
    np.testing.assert_array_equal(data.load_dataset("cifar100_coarse", data_dir=tmp_path)[1],
                                  want[1][:, 0])


def small_cifar(root: Path, per_file: int = 60, train100: int = 600, test100: int = 300) -> Path:
    """Both datasets in ``root`` (cifar10/, cifar100/), small: every CIFAR-10 batch
    ``per_file`` records, CIFAR-100 ``train100`` and ``test100`` records."""
    write_dataset(root / "cifar10", "cifar10", per_file)
    folder = root / "cifar100"
    folder.mkdir(parents=True)
    for name, n, seed in (("train.bin", train100, 5), ("test.bin", test100, 6)):
        (folder / name).write_bytes(records(n, (20, 100), seed)[0])
    return root


def test_split_cifar10_100_tasks(tmp_path):
    """Task 1: CIFAR-10 whole; tasks 2-6: CIFAR-100's fine classes 0-9, ..., 40-49 as
    0..9; images as float32 in [0, 1] in channel-first order."""
    import hnviz
    from hnviz.data.sequences import split_cifar10, split_cifar10_100
    root = small_cifar(tmp_path)
    seq = split_cifar10_100(data_dir=root)
    c10 = data.load_dataset("cifar10", data_dir=root)
    c100 = data.load_dataset("cifar100", data_dir=root)
    assert len(seq) == 6 and seq[0].x_train.shape == (300, 3072)
    np.testing.assert_array_equal(seq[0].x_train.numpy(), c10[0].reshape(300, -1) / np.float32(255))
    for t in range(1, 6):
        keep = (c100[3] >= 10 * (t - 1)) & (c100[3] < 10 * t)
        np.testing.assert_array_equal(seq[t].y_test.numpy(), c100[3][keep] - 10 * (t - 1))
        assert seq[t].in_shape == (3, 32, 32) and seq[t].class_offset == 10 * t
    sub = split_cifar10_100(data_dir=root, n_train=20, n_test=10, seed=3)
    assert all(len(t.x_train) == 20 and len(t.x_test) == 10 for t in sub)
    split = split_cifar10(data_dir=root)
    assert len(split) == 5 and set(split[2].y_train.tolist()) == {0, 1}
    assert hnviz.get_benchmark("split_cifar10", data_dir=str(root))[4].meta["classes"] == [8, 9]
    with pytest.raises(ValueError, match="n_train must be an integer >= 1 and <= 300"):
        split_cifar10_100(data_dir=root, n_train=301)
    from hnviz.data.benchmarks import data_bytes
    assert data_bytes("split_cifar10_100", {}) == (60000 + 5 * 6000) * 3072 * 4  # 1.03 GiB
    assert data_bytes("split_cifar10", {"n_train": 100, "n_test": 50}) == 150 * 3072 * 4


@pytest.mark.slow
@pytest.mark.parametrize("preset,weights", [("split_cifar10_100", 1_276_508),
                                            ("split_cifar10_100_resnet", 468_540)])
def test_train_split_cifar10_100_end_to_end(tmp_path, monkeypatch, preset, weights):
    """The paper's transfer benchmark through the command line on generated files: six
    tasks of the ZenkeNet and the ResNet-32 preset, two steps each (a smoke run, not a
    result); the ResNet's batch-norm statistics of all six tasks come back from the run."""
    import json
    import subprocess
    import sys
    root = small_cifar(tmp_path / "data")
    out = tmp_path / "run"
    env = {**os.environ, data.ENV_VAR: str(root)}
    res = subprocess.run([sys.executable, "-m", "hnviz", "train", "--benchmark",
                          "split_cifar10_100", "--preset", preset, "--steps", "2",
                          "--out", str(out),
                          "--no-progress", "--device", "cpu"], capture_output=True, text=True,
                         timeout=600, env=env)
    assert res.returncode == 0, res.stderr
    m = json.loads((out / "run.json").read_text())["metrics"]
    assert len(m["final"]) == 6 and all(0 <= a <= 100 for a in m["final"])
    import hnviz
    monkeypatch.setenv(data.ENV_VAR, str(root))  # where the run's benchmark finds its data
    run = hnviz.load_run(out)
    assert run.learner.target_.num_params == weights
    assert run.learner.hnet_.compression_ratio(6) < 1
    norms = run.learner.target_.norms
    assert (norms is None) == (weights != 468_540)
    if norms is not None:
        assert sorted(norms.stats) == list(range(6))
        scores = [run.learner.score(t) for t in run.tasks()]
        np.testing.assert_allclose(scores, m["final"], atol=1e-9)


def test_a_stray_gz_does_not_hide_a_cifar_file(tmp_path):
    """CIFAR's files are never gzipped one by one: data_batch_1.bin.gz next to the real
    file is not taken for it."""
    write_dataset(tmp_path / "cifar10", "cifar10", 3)
    (tmp_path / "cifar10" / "data_batch_1.bin.gz").write_bytes(b"\x1f\x8bjunk")
    assert data.load_dataset("cifar10", data_dir=tmp_path)[0].shape == (15, 3, 32, 32)


def test_a_download_longer_than_any_dataset_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "MAX_DOWNLOAD_BYTES", 1000)
    (tmp_path / "big").write_bytes(b"x" * 1001)
    with pytest.raises(ValueError, match="longer than 1,000 bytes"):
        data._fetch((tmp_path / "big").as_uri())
    (tmp_path / "ok").write_bytes(b"x" * 1000)
    assert len(data._fetch((tmp_path / "ok").as_uri())) == 1000
