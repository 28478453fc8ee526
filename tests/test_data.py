"""hnviz.data: IDX parsing, search order, downloads (from a local HTTP server only)."""
from __future__ import annotations

import gzip
import hashlib
import http.server
import os
import re
import socket
import struct
import threading
from pathlib import Path

import numpy as np
import pytest

from hnviz.data import datasets as data

TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS = data.FILES


# ----------------------------------------------------------------------------- helpers

def idx_bytes(arr: np.ndarray) -> bytes:
    """A raw unsigned-byte IDX file holding ``arr``."""
    header = bytes([0, 0, 0x08, arr.ndim]) + struct.pack(f">{arr.ndim}i", *arr.shape)
    return header + np.ascontiguousarray(arr, dtype=np.uint8).tobytes()


def write_set(directory: Path, label: int, n_train: int = 5, n_test: int = 3,
              gz: bool = True) -> None:
    """A tiny valid dataset whose images are all ``label`` and whose labels are all ``label``."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = [np.full((n_train, 28, 28), label), np.full(n_train, label),
              np.full((n_test, 28, 28), label), np.full(n_test, label)]
    for base, arr in zip(data.BASENAMES, arrays, strict=True):
        raw = idx_bytes(arr)
        name = f"{base}.gz" if gz else base
        (directory / name).write_bytes(gzip.compress(raw, mtime=0) if gz else raw)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` with its bytes."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def loaded_label(**kwargs) -> int:
    """The (constant) training label of the synthetic set ``load_dataset("mnist")`` finds."""
    return int(data.load_dataset("mnist", **kwargs)[1][0])


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch) -> Path:
    """No HNVIZ_DATA; the user cache is a fresh temporary directory (returned)."""
    monkeypatch.delenv(data.ENV_VAR, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    return tmp_path / "xdg"


def require_fashion_dir(d: Path) -> Path:
    """``d`` if it holds Fashion-MNIST; otherwise fail under CI=true (the CI script installs
    the Debian package), else skip."""
    if not all((d / f).is_file() for f in data.FILES):
        msg = f"{d} lacks Fashion-MNIST; install it: sudo apt-get install dataset-fashion-mnist"
        if os.environ.get("CI") == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return d


@pytest.fixture(scope="module")
def debian_fashion() -> Path:
    """Debian's Fashion-MNIST directory (see :func:`require_fashion_dir`)."""
    return require_fashion_dir(data.DEBIAN_FASHION_MNIST)


@pytest.mark.parametrize("ci, outcome", [("true", pytest.fail.Exception),
                                         ("", pytest.skip.Exception)])
def test_missing_real_files_fail_under_ci_else_skip(ci, outcome, tmp_path, monkeypatch):
    monkeypatch.setenv("CI", ci)
    with pytest.raises(outcome, match="apt-get install dataset-fashion-mnist"):
        require_fashion_dir(tmp_path)


# ----------------------------------------------------------------------------- real files

def test_real_fashion_mnist(debian_fashion):
    x_tr, y_tr, x_te, y_te = data.load_dataset("fashion_mnist", data_dir=debian_fashion)
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)
    assert y_tr.shape == (60000,) and y_te.shape == (10000,)
    assert x_tr.dtype == x_te.dtype == np.uint8 and y_tr.dtype == y_te.dtype == np.int64
    assert y_tr.min() == y_te.min() == 0 and y_tr.max() == y_te.max() == 9
    assert (np.bincount(y_tr, minlength=10) == 6000).all()
    assert (np.bincount(y_te, minlength=10) == 1000).all()
    assert x_tr.min() == x_te.min() == 0 and x_tr.max() == x_te.max() == 255


def test_debian_dir_found_without_configuration(debian_fashion):
    assert data.search_dirs("fashion_mnist")[-1] == debian_fashion
    x_tr, _, x_te, _ = data.load_dataset("Fashion-MNIST")
    assert x_tr.shape == (60000, 28, 28) and x_te.shape == (10000, 28, 28)
    x_tr[:] = 0  # copies: the in-memory cache is not affected
    assert data.load_dataset("fashion_mnist")[0].max() == 255


# ----------------------------------------------------------------------------- corrupt files

@pytest.fixture
def labels_idx(debian_fashion_or_none) -> bytes:
    """Uncompressed labels IDX: Debian's t10k labels if installed, else synthetic."""
    if debian_fashion_or_none is not None:
        return gzip.decompress((debian_fashion_or_none / TEST_LABELS).read_bytes())
    return idx_bytes(np.arange(10000) % 10)


@pytest.fixture
def debian_fashion_or_none() -> Path | None:
    d = data.DEBIAN_FASHION_MNIST
    return d if (d / TEST_LABELS).is_file() else None


CORRUPTIONS = {
    "truncated_gzip": lambda raw: gzip.compress(raw)[: len(gzip.compress(raw)) // 2],
    "truncated_payload": lambda raw: gzip.compress(raw[:-7]),
    "padded_payload": lambda raw: gzip.compress(raw + b"\x00"),
    "wrong_magic": lambda raw: gzip.compress(b"\x08\x01" + raw[2:]),
    "wrong_dtype": lambda raw: gzip.compress(raw[:2] + b"\x0d" + raw[3:]),
    "random_bytes": lambda raw: np.random.default_rng(0).bytes(4096),
    "empty": lambda raw: b"",
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
@pytest.mark.parametrize("suffix", [".gz", ""])
def test_corrupt_file_raises_and_changes_nothing(kind, suffix, labels_idx, tmp_path):
    bad = tmp_path / f"{TEST_LABELS.removesuffix('.gz')}{suffix}"
    bad.write_bytes(CORRUPTIONS[kind](labels_idx))
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=re.escape(str(bad))) as err:
        data.read_idx(bad)
    assert "delete it and download it again" in str(err.value)
    assert snapshot(tmp_path) == before


def test_corrupt_file_inside_a_dataset(tmp_path):
    write_set(tmp_path / "d", 1)
    bad = tmp_path / "d" / TRAIN_IMAGES
    bad.write_bytes(bad.read_bytes()[:-20])
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=re.escape(str(bad))):
        data.load_dataset("mnist", data_dir=tmp_path / "d")
    assert snapshot(tmp_path) == before


def test_swapped_files_are_named(tmp_path):
    write_set(tmp_path, 1)
    images, labels = tmp_path / TRAIN_IMAGES, tmp_path / TRAIN_LABELS
    tmp = images.read_bytes()
    images.write_bytes(labels.read_bytes())
    labels.write_bytes(tmp)
    with pytest.raises(ValueError, match=re.escape(str(images)) + ".*right file"):
        data.load_dataset("mnist", data_dir=tmp_path)


def test_debian_files_get_the_reinstall_hint():
    err = data._corrupt(data.DEBIAN_FASHION_MNIST / TEST_LABELS, "bad magic")
    assert "apt-get install --reinstall dataset-fashion-mnist" in str(err)


def test_read_idx_valid_raw_and_gz(tmp_path):
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(arr))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(arr)))
    for p in (tmp_path / "a", tmp_path / "a.gz"):
        out = data.read_idx(p)
        assert out.dtype == np.uint8 and out.flags.writeable
        np.testing.assert_array_equal(out, arr)


# ----------------------------------------------------------------------------- search order

def test_unknown_name_lists_choices():
    with pytest.raises(ValueError, match="'svhn'.*mnist, fashion_mnist, cifar10, cifar100"):
        data.load_dataset("svhn")


def test_not_found_lists_every_directory(tmp_path, monkeypatch, isolated_env):
    env = tmp_path / "env"
    (env / "mnist").mkdir(parents=True)
    write_set(env / "mnist", 1)
    (env / "mnist" / TEST_LABELS).unlink()
    monkeypatch.setenv(data.ENV_VAR, str(env))
    with pytest.raises(FileNotFoundError) as err:
        data.load_dataset("mnist", data_dir=tmp_path / "nope")
    msg = str(err.value)
    assert isinstance(err.value, OSError)
    for d in [tmp_path / "nope" / "mnist", tmp_path / "nope", env / "mnist", env,
              isolated_env / "hnviz" / "mnist"]:
        assert f"{d} (" in msg
    assert len(msg.splitlines()) == 3  # what, where it looked, how to get it
    assert "lacks t10k-labels-idx1-ubyte)" in msg and "download=True" in msg
    assert data.ENV_VAR in msg and "apt-get" not in msg


def test_not_found_fashion_suggests_apt(tmp_path, monkeypatch):
    monkeypatch.setitem(data.DATASETS["fashion_mnist"], "system_dirs", (tmp_path / "sys",))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist") as err:
        data.load_dataset("fashion_mnist")
    assert f"{tmp_path / 'sys'} (does not exist)" in str(err.value)


def test_search_dirs_order(tmp_path, monkeypatch, isolated_env):
    monkeypatch.setenv(data.ENV_VAR, str(tmp_path / "env"))
    cache = isolated_env / "hnviz"
    assert data.search_dirs("mnist", tmp_path / "x") == [
        tmp_path / "x" / "mnist", tmp_path / "x", tmp_path / "env" / "mnist", tmp_path / "env",
        cache / "mnist"]
    assert data.search_dirs("fashion_mnist") == [
        tmp_path / "env" / "fashion_mnist", tmp_path / "env", cache / "fashion_mnist",
        data.DEBIAN_FASHION_MNIST]


def test_cache_dir_defaults_to_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for xdg in (None, "", "relative/path"):
        if xdg is None:
            monkeypatch.delenv("XDG_CACHE_HOME")
        else:
            monkeypatch.setenv("XDG_CACHE_HOME", xdg)
        assert data.cache_dir("mnist") == tmp_path / ".cache" / "hnviz" / "mnist"


def test_precedence_data_dir_env_cache(tmp_path, monkeypatch, isolated_env):
    explicit, env = tmp_path / "explicit", tmp_path / "env"
    write_set(explicit, 1)
    write_set(env / "mnist", 2)
    write_set(env, 4, gz=False)
    write_set(isolated_env / "hnviz" / "mnist", 3)
    monkeypatch.setenv(data.ENV_VAR, str(env))
    assert loaded_label(data_dir=explicit) == 1
    assert loaded_label() == 2  # HNVIZ_DATA/<name> before HNVIZ_DATA itself
    for f in (env / "mnist").iterdir():
        f.unlink()
    assert loaded_label() == 4  # HNVIZ_DATA itself, uncompressed files
    monkeypatch.delenv(data.ENV_VAR)
    assert loaded_label() == 3
    x_tr, y_tr, _, y_te = data.load_dataset("mnist")
    assert x_tr.shape == (5, 28, 28) and y_te.shape == (3,) and y_tr.dtype == np.int64


def test_in_memory_cache_sees_replaced_files(tmp_path):
    write_set(tmp_path, 1)
    first = data.load_dataset("mnist", data_dir=tmp_path)
    first[0][:] = 9
    assert data.load_dataset("mnist", data_dir=tmp_path)[0].max() == 1
    write_set(tmp_path, 2)
    assert loaded_label(data_dir=tmp_path) == 2


# ----------------------------------------------------------------------------- download

@pytest.fixture
def mirror(tmp_path, monkeypatch):
    """A local HTTP server on a free port: ``good/`` (label 1), ``bad/`` (same names, other
    bytes), nothing under ``missing/``. Patches the MNIST MD5s to those of ``good/``.
    Yields (base URL, served root, list of requested paths)."""
    root = tmp_path / "served"
    write_set(root / "good", 1)
    write_set(root / "bad", 7)
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    md5 = {f: hashlib.md5((root / "good" / f).read_bytes()).hexdigest() for f in data.FILES}
    monkeypatch.setitem(data.DATASETS["mnist"], "md5", md5)
    monkeypatch.setattr(data, "TIMEOUT_S", 5.0)
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/", root, requests
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def test_download_into_cache(mirror, monkeypatch, isolated_env):
    base, root, requests = mirror
    monkeypatch.setitem(data.DATASETS["mnist"], "mirrors", [base + "good"])  # no trailing /
    x_tr, y_tr, _, y_te = data.load_dataset("mnist", download=True)
    assert x_tr.shape == (5, 28, 28) and (y_tr == 1).all() and y_te.shape == (3,)
    cache = isolated_env / "hnviz" / "mnist"
    assert snapshot(cache) == snapshot(root / "good")
    assert sorted(requests) == sorted(f"/good/{f}" for f in data.FILES)
    requests.clear()
    assert loaded_label(download=True) == 1 and requests == []  # already there: no network


def test_download_falls_back_and_leaves_no_partial_file(mirror, monkeypatch, isolated_env):
    base, root, requests = mirror
    mirrors = [closed_port_url(), base + "bad/", base + "missing/", base + "good/"]
    monkeypatch.setitem(data.DATASETS["mnist"], "mirrors", mirrors)
    assert loaded_label(download=True) == 1
    assert snapshot(isolated_env) == {f"hnviz/mnist/{f}": (root / "good" / f).read_bytes()
                                      for f in data.FILES}
    assert {f"/bad/{f}" for f in data.FILES} <= set(requests)


def test_download_fetches_only_missing_files(mirror, monkeypatch, isolated_env):
    base, root, requests = mirror
    monkeypatch.setitem(data.DATASETS["mnist"], "mirrors", [base + "good/"])
    cache = isolated_env / "hnviz" / "mnist"
    cache.mkdir(parents=True)
    for f in (TRAIN_IMAGES, TEST_IMAGES):
        (cache / f).write_bytes((root / "good" / f).read_bytes())
    assert loaded_label(download=True) == 1
    assert sorted(requests) == sorted([f"/good/{TRAIN_LABELS}", f"/good/{TEST_LABELS}"])


def test_download_all_mirrors_bad(mirror, monkeypatch, isolated_env):
    base, _, _ = mirror
    mirrors = [base + "bad/", base + "missing/", closed_port_url()]
    monkeypatch.setitem(data.DATASETS["mnist"], "mirrors", mirrors)
    with pytest.raises(data.DownloadError) as err:
        data.load_dataset("mnist", download=True)
    msg = str(err.value)
    assert isinstance(err.value, OSError) and TRAIN_IMAGES in msg
    assert all(m + TRAIN_IMAGES in msg for m in mirrors)
    assert "MD5" in msg and "404" in msg and "refused" in msg.lower()
    assert snapshot(isolated_env) == {}  # no partial or temporary file left
