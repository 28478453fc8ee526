"""The task sequences themselves: the toy regression, the 8x8 digit sequences,
(Fashion-)MNIST as permuted or split sequences, and split CIFAR. Each has one spec in
:mod:`hnviz.data.benchmarks`, which is how the rest of hnviz reaches it."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .datasets import IDX_DATASETS, load_dataset
from ..core.tasks import PermutedRows, Task, TaskSequence, column_major
from ..core.validate import check_bool, check_choice, check_int, check_real, is_int

TOY_FUNCTIONS: list[tuple[str, Callable[[np.ndarray], np.ndarray], tuple[float, float]]] = [
    ("x + 3", lambda x: x + 3.0, (-4.0, -2.0)),
    ("2x^2 - 1", lambda x: 2.0 * x ** 2 - 1.0, (-1.0, 1.0)),
    ("(x - 3)^3", lambda x: (x - 3.0) ** 3, (2.0, 4.0)),
]


def toy_regression(seed: int = 42, n_train: int = 100, n_test: int = 50,
                   noise: float = 0.05) -> TaskSequence:
    """The paper's 1-D toy (Fig. 2): three polynomials on disjoint input ranges.

    Training inputs are uniform in the range with Gaussian output noise (std ``noise``);
    test inputs are ``n_test`` equidistant noise-free points (as in the authors' code).
    """
    seed, n_train, n_test = check_seed(seed), check_int("n_train", n_train), \
        check_int("n_test", n_test)
    noise = check_real("noise", noise, allow_lo=True)
    rng = np.random.RandomState(seed)
    tasks = [_toy_task(i, f"f{i + 1}(x) = {name}", fn, x_range, rng, n_train, n_test, noise, 3)
             for i, (name, fn, x_range) in enumerate(TOY_FUNCTIONS)]
    return TaskSequence("toy_regression", tasks,
                        {"name": "toy_regression", "seed": seed, "n_train": n_train,
                         "n_test": n_test, "noise": noise})


def toy_variant(tasks: TaskSequence, of: int, shift: float = 0.3, seed: int = 7,
                n_train: int = 100, n_test: int = 50, noise: float = 0.05) -> Task:
    """A new toy task close to task ``of``: its polynomial moved up by ``shift`` on the same
    input range, numbered after the sequence (for transfer: start its embedding at
    ``learner.embeddings_[of]``). Its ``n_tasks`` counts it as one more task."""
    if tasks.name != "toy_regression":
        raise ValueError(f"toy_variant extends the toy regression, got {tasks.name}")
    of = tasks[of].task_id
    _, fn, x_range = TOY_FUNCTIONS[of]
    T = len(tasks)
    return _toy_task(T, f"f{of + 1}(x) + {shift:g}", lambda x: fn(x) + shift, x_range,
                     np.random.RandomState(seed), n_train, n_test, noise, T + 1,
                     variant_of=of)


def _toy_task(task_id: int, name: str, fn: Callable[[np.ndarray], np.ndarray],
              x_range: tuple[float, float], rng: np.random.RandomState, n_train: int,
              n_test: int, noise: float, n_tasks: int, **meta: Any) -> Task:
    """One 1-D regression task: uniform training inputs with Gaussian output noise (std
    ``noise``), ``n_test`` equidistant noise-free test points."""
    lo, hi = x_range
    x_tr = rng.uniform(lo, hi, size=(n_train, 1))
    y_tr = fn(x_tr) + rng.normal(0.0, noise, size=(n_train, 1))
    x_te = np.linspace(lo, hi, n_test).reshape(n_test, 1)
    return Task(task_id, name, "regression", *(_f32(a) for a in (x_tr, y_tr, x_te, fn(x_te))),
                n_outputs=1, n_tasks=n_tasks, in_shape=(1,),
                meta={"x_range": (lo, hi), **meta})


def _f32(a: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float32))


def _digits_split(seed: int) -> tuple[np.ndarray, ...]:
    """scikit-learn's 8x8 digits scaled to [0, 1], fixed stratified 75/25 split:
    x_train, y_train, x_test, y_test with x float32 ``(N, 64)``."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_tr, x_te, y_tr, y_te = train_test_split(x / 16.0, y, test_size=0.25, random_state=seed,
                                              stratify=y)
    return (x_tr.astype(np.float32), y_tr.astype(np.int64), x_te.astype(np.float32),
            y_te.astype(np.int64))


def _permuted(data: tuple[np.ndarray, ...], n_tasks: int, seed: int,
              in_shape: tuple[int, ...]) -> list[Task]:
    """Task t applies fixed pixel permutation t (t = 0: identity, then drawn with
    ``seed + 1``) to every image of ``data`` (x_train, y_train, x_test, y_test). The
    images are held once; each task reads them through its permutation
    (:class:`~hnviz.core.tasks.PermutedRows`)."""
    x_tr, y_tr, x_te, y_te = (torch.from_numpy(a) for a in data)
    x_te = column_major(x_te)  # test sets are read whole (scoring); batches read rows
    D = x_tr.shape[1]
    rng = np.random.RandomState(seed + 1)
    tasks = []
    for t in range(n_tasks):
        perm = np.arange(D) if t == 0 else rng.permutation(D)
        p = torch.from_numpy(perm)
        tasks.append(Task(t, f"permutation {t}", "classification", PermutedRows(x_tr, p), y_tr,
                          PermutedRows(x_te, p), y_te, n_outputs=10, n_tasks=n_tasks,
                          in_shape=in_shape, meta={"permutation": perm.tolist()},
                          class_offset=10 * t, n_classes_total=10 * n_tasks))
    return tasks


def _split(data: tuple[np.ndarray, ...], in_shape: tuple[int, ...], label: str) -> list[Task]:
    """5 tasks of 2 classes, (0,1), (2,3), ..., (8,9), labels 0/1 per task."""
    x_tr, y_tr, x_te, y_te = data
    tasks = []
    for t in range(5):
        classes = (2 * t, 2 * t + 1)
        tr, te = np.isin(y_tr, classes), np.isin(y_te, classes)
        tasks.append(Task(t, f"{label} {classes[0]}/{classes[1]}", "classification",
                          torch.from_numpy(x_tr[tr]), torch.from_numpy(y_tr[tr] - classes[0]),
                          torch.from_numpy(x_te[te]), torch.from_numpy(y_te[te] - classes[0]),
                          n_outputs=2, n_tasks=5, in_shape=in_shape,
                          meta={"classes": list(classes)}, class_offset=2 * t,
                          n_classes_total=10))
    return tasks


def permuted_digits(n_tasks: int = 10, seed: int = 0) -> TaskSequence:
    """PermutedDigits: task t applies fixed pixel permutation t (t = 0: identity).

    10 classes per task; inputs ``(N, 64)``.
    """
    check_n_tasks(n_tasks)
    tasks = _permuted(_digits_split(check_seed(seed)), n_tasks, seed, (1, 8, 8))
    return TaskSequence(f"permuted_digits_{n_tasks}", tasks,
                        {"name": "permuted_digits", "n_tasks": n_tasks, "seed": seed})


def split_digits(seed: int = 0) -> TaskSequence:
    """SplitDigits: 5 tasks of 2 classes, (0,1), (2,3), ..., (8,9); labels 0/1 per task."""
    tasks = _split(_digits_split(check_seed(seed)), (1, 8, 8), "digits")
    return TaskSequence("split_digits", tasks, {"name": "split_digits", "seed": seed})


def rotated_digits(n_tasks: int = 4, seed: int = 0) -> TaskSequence:
    """RotatedDigits: task t shows every digit turned by 360 t / ``n_tasks`` degrees
    (t = 0: upright; bilinear, clipped to [0, 1]); 10 classes per task, inputs ``(N, 64)``.
    A domain shift between tasks with the same labels (cl2 is its natural scenario).
    Each task holds its own turned copy of the images."""
    from scipy.ndimage import rotate

    check_n_tasks(n_tasks)
    x_tr, y_tr, x_te, y_te = _digits_split(check_seed(seed))

    def turned(x: np.ndarray, angle: float) -> torch.Tensor:
        out = rotate(x.reshape(-1, 8, 8), angle, axes=(1, 2), reshape=False, order=1)
        return torch.from_numpy(np.clip(out, 0.0, 1.0).reshape(len(x), 64).astype(np.float32))

    tasks = [Task(t, f"turned {360 * t / n_tasks:g} degrees", "classification",
                  turned(x_tr, 360 * t / n_tasks), torch.from_numpy(y_tr),
                  turned(x_te, 360 * t / n_tasks), torch.from_numpy(y_te), n_outputs=10,
                  n_tasks=n_tasks, in_shape=(1, 8, 8), meta={"angle": 360 * t / n_tasks},
                  class_offset=10 * t, n_classes_total=10 * n_tasks) for t in range(n_tasks)]
    return TaskSequence(f"rotated_digits_{n_tasks}", tasks,
                        {"name": "rotated_digits", "n_tasks": n_tasks, "seed": seed})


def _load(dataset: str, data_dir: str | None, download: Any) -> tuple[np.ndarray, ...]:
    """:func:`~hnviz.data.datasets.load_dataset` with a benchmark's ``data_dir`` and
    ``download`` options checked first."""
    download = check_bool("download", download)
    if data_dir is not None and not isinstance(data_dir, (str, Path)):
        raise TypeError(f"data_dir must be a folder path or None, got {data_dir!r}")
    return load_dataset(dataset, data_dir=data_dir, download=download)


def _images(dataset: str, seed: int, n_train: int | None, n_test: int | None,
            padding: bool, data_dir: str | None, download: bool) -> tuple[np.ndarray, ...]:
    """MNIST-like images as float32 in [0, 1], flattened ``(N, 784)`` (``(N, 1024)`` padded
    to 32x32 as in the paper), with optional seeded subsets of ``n_train``/``n_test``."""
    check_choice("dataset", dataset, IDX_DATASETS)
    seed, padding = check_seed(seed), check_bool("padding", padding)
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None:
            check_int(name, n, lo=None)  # the range is checked against the data below
    x_tr, y_tr, x_te, y_te = _load(dataset, data_dir, download)
    rng = np.random.RandomState(seed)
    out = []
    for x, y, n in ((x_tr, y_tr, n_train), (x_te, y_te, n_test)):
        if n is not None:
            if not 1 <= n <= len(x):
                raise ValueError(f"subset size {n} out of range; use 1..{len(x)} or None (all)")
            idx = np.sort(rng.choice(len(x), n, replace=False))
            x, y = x[idx], y[idx]
        if padding:
            x = np.pad(x, ((0, 0), (2, 2), (2, 2)))
        x = x.reshape(len(x), -1).astype(np.float32)
        x /= 255.0  # in place: one float copy of the images at a time
        out += [x, y.astype(np.int64)]
    return tuple(out)


def permuted_mnist(n_tasks: int = 10, seed: int = 0, dataset: str = "mnist",
                   padding: bool = False, n_train: int | None = None, n_test: int | None = None,
                   data_dir: str | None = None, download: bool = False) -> TaskSequence:
    """PermutedMNIST (or ``dataset="fashion_mnist"``): task t applies fixed pixel
    permutation t (t = 0: identity) to every image; 10 classes per task.

    Memory: the images are held once (``(n_train + n_test) * 784 * 4`` bytes, 220 MB for
    all of MNIST) whatever the number of tasks; each task permutes the rows it reads.
    """
    check_n_tasks(n_tasks)
    data = _images(dataset, seed, n_train, n_test, padding, data_dir, download)
    side = 32 if padding else 28
    tasks = _permuted(data, n_tasks, seed, (1, side, side))
    name = "permuted_mnist" if dataset == "mnist" else f"permuted_{dataset}"
    return TaskSequence(f"{name}_{n_tasks}", tasks, {
        "name": name, "n_tasks": n_tasks, "seed": seed, "padding": padding,
        "n_train": n_train, "n_test": n_test, "data_dir": data_dir, "download": download})


def split_mnist(seed: int = 0, dataset: str = "mnist", n_train: int | None = None,
                n_test: int | None = None, data_dir: str | None = None,
                download: bool = False) -> TaskSequence:
    """SplitMNIST (or ``dataset="fashion_mnist"``): 5 tasks of classes (0,1), ..., (8,9)."""
    data = _images(dataset, seed, n_train, n_test, False, data_dir, download)
    tasks = _split(data, (1, 28, 28), "classes")
    name = "split_mnist" if dataset == "mnist" else f"split_{dataset}"
    return TaskSequence(name, tasks, {"name": name, "seed": seed, "n_train": n_train,
                                      "n_test": n_test, "data_dir": data_dir,
                                      "download": download})


def permuted_fashion_mnist(n_tasks: int = 10, **kwargs: Any) -> TaskSequence:
    """:func:`permuted_mnist` on Fashion-MNIST (Debian's ``dataset-fashion-mnist`` works)."""
    return permuted_mnist(n_tasks, dataset="fashion_mnist", **kwargs)


def split_fashion_mnist(**kwargs: Any) -> TaskSequence:
    """:func:`split_mnist` on Fashion-MNIST."""
    return split_mnist(dataset="fashion_mnist", **kwargs)


def _cifar(arrays: tuple[np.ndarray, ...], rng: np.random.RandomState, n_train: int | None,
           n_test: int | None, classes: tuple[int, ...] | None = None
           ) -> tuple[np.ndarray, ...]:
    """CIFAR images (``arrays`` as :func:`load_dataset` returns them) as float32 in
    [0, 1], flattened channels first ``(N, 3072)``, with int64 labels: only ``classes``
    (all when None), then subsets of ``n_train``/``n_test`` of those drawn with ``rng``."""
    out = []
    for (x, y), n, split in (((arrays[0], arrays[1]), n_train, "n_train"),
                             ((arrays[2], arrays[3]), n_test, "n_test")):
        if classes is not None:
            keep = np.isin(y, classes)
            x, y = x[keep], y[keep]
        if n is not None:
            check_int(split, n, 1, len(x))
            idx = np.sort(rng.choice(len(x), n, replace=False))
            x, y = x[idx], y[idx]
        out += [x.reshape(len(x), -1).astype(np.float32) / 255.0, y.astype(np.int64)]
    return tuple(out)


def split_cifar10(seed: int = 0, n_train: int | None = None, n_test: int | None = None,
                  data_dir: str | None = None, download: bool = False) -> TaskSequence:
    """SplitCIFAR-10: 5 tasks of classes (0,1), ..., (8,9) (labels 0/1 per task);
    inputs ``(N, 3072)``, 32x32 colour images channels first. Memory: 703 MiB as float32
    for all of CIFAR-10 (``n_train`` and ``n_test`` take seeded subsets)."""
    rng = np.random.RandomState(check_seed(seed))
    data = _cifar(_load("cifar10", data_dir, download), rng, n_train, n_test)
    return TaskSequence("split_cifar10", _split(data, (3, 32, 32), "classes"), {
        "name": "split_cifar10", "seed": seed, "n_train": n_train, "n_test": n_test,
        "data_dir": data_dir, "download": download})


def split_cifar10_100(seed: int = 0, n_train: int | None = None, n_test: int | None = None,
                      data_dir: str | None = None, download: bool = False) -> TaskSequence:
    """Split CIFAR-10/100 (the paper's transfer benchmark): task 1 is all of CIFAR-10,
    tasks 2-6 the CIFAR-100 classes 0-9, 10-19, ..., 40-49 (fine labels); 10 classes per
    task, labels 0..9 within each. ``n_train``/``n_test`` take seeded subsets per task.
    Memory: 1.03 GiB as float32 (60,000 CIFAR-10 and 30,000 CIFAR-100 images)."""
    rng, tasks = np.random.RandomState(check_seed(seed)), []
    loaded = {name: _load(name, data_dir, download) for name in ("cifar10", "cifar100")}
    for t in range(6):
        dataset, classes = ("cifar10", None) if t == 0 else \
            ("cifar100", tuple(range(10 * (t - 1), 10 * t)))
        x_tr, y_tr, x_te, y_te = _cifar(loaded[dataset], rng, n_train, n_test, classes)
        low = 0 if classes is None else classes[0]
        name = "CIFAR-10" if t == 0 else f"CIFAR-100 classes {low}-{low + 9}"
        tasks.append(Task(t, name, "classification", torch.from_numpy(x_tr),
                          torch.from_numpy(y_tr - low), torch.from_numpy(x_te),
                          torch.from_numpy(y_te - low), n_outputs=10, n_tasks=6,
                          in_shape=(3, 32, 32), meta={"dataset": dataset, "first_class": low},
                          class_offset=10 * t, n_classes_total=60))
    return TaskSequence("split_cifar10_100", tasks, {
        "name": "split_cifar10_100", "seed": seed, "n_train": n_train, "n_test": n_test,
        "data_dir": data_dir, "download": download})


# fashion_transfer's later tasks: five 5-way tasks over classes the first task had (0-4)
# and did not have (5-9), labelled 0..4 in this order
TRANSFER_CLASSES = ((5, 6, 7, 8, 9), (0, 2, 4, 6, 8), (1, 3, 5, 7, 9), (0, 1, 5, 6, 9),
                    (2, 3, 4, 7, 8))


def fashion_transfer(seed: int = 0, n_per_class: int = 20, n_test: int | None = None,
                     data_dir: str | None = None, download: bool = False) -> TaskSequence:
    """An offline analogue of the paper's split CIFAR-10/100 transfer protocol: a first
    task with plenty of data (Fashion-MNIST classes 0-4, all 30,000 training images),
    then five small 5-way tasks (``TRANSFER_CLASSES``: the other five classes, and mixes
    of old and new ones) with ``n_per_class`` training images per class drawn with
    ``seed``; every task is scored on all test images of its classes (5,000; ``n_test``:
    a seeded subset of them, for a quick look). They share
    what clothes look like with the first task and with each other, so what was learned
    first can help the later, data-poor tasks. Inputs ``(N, 784)``; 6 tasks of 5 outputs.
    Memory: 190 MB as float32."""
    n_per_class = check_int("n_per_class", n_per_class, 1, 6000)
    n_test = None if n_test is None else check_int("n_test", n_test, 1, 5000)
    x_tr, y_tr, x_te, y_te = _images("fashion_mnist", seed, None, None, False, data_dir,
                                     download)
    rng, tasks = np.random.RandomState(check_seed(seed)), []
    for t, classes in enumerate(((0, 1, 2, 3, 4), *TRANSFER_CLASSES)):
        pick = [np.flatnonzero(y_tr == c) for c in classes]
        if t > 0:
            pick = [np.sort(rng.choice(p, n_per_class, replace=False)) for p in pick]
        tr = np.sort(np.concatenate(pick))
        te = np.flatnonzero(np.isin(y_te, classes))
        if n_test is not None:
            te = np.sort(rng.choice(te, n_test, replace=False))
        relabel = np.zeros(10, dtype=np.int64)
        relabel[list(classes)] = np.arange(5)
        name = "classes " + ",".join(map(str, classes))
        tasks.append(Task(t, name, "classification", torch.from_numpy(x_tr[tr]),
                          torch.from_numpy(relabel[y_tr[tr]]), torch.from_numpy(x_te[te]),
                          torch.from_numpy(relabel[y_te[te]]), n_outputs=5, n_tasks=6,
                          in_shape=(1, 28, 28), meta={"classes": list(classes)},
                          class_offset=5 * t, n_classes_total=30))
    return TaskSequence("fashion_transfer", tasks, {
        "name": "fashion_transfer", "seed": seed, "n_per_class": n_per_class,
        "n_test": n_test, "data_dir": data_dir, "download": download})


MAX_TASKS = 10_000


def check_n_tasks(n_tasks: Any) -> None:
    if not is_int(n_tasks) or not 1 <= n_tasks <= MAX_TASKS:
        raise ValueError(f"n_tasks must be an integer >= 1 and <= {MAX_TASKS}, got {n_tasks!r}")


def check_seed(seed: Any) -> int:
    return check_int("seed", seed, 0, 2**32 - 2)
