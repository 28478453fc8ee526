"""Task sequences with one common shape: the toy regression, the 8x8 digit benchmarks and
(Fashion-)MNIST, as permuted or split sequences."""
from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .datasets import DATASETS, load_dataset
from .scenarios import apply_scenario
from ..core.tasks import PermutedRows, Task, TaskSequence
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
    seed, n_train, n_test = _check_seed(seed), check_int("n_train", n_train), \
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
    _check_n_tasks(n_tasks)
    tasks = _permuted(_digits_split(_check_seed(seed)), n_tasks, seed, (1, 8, 8))
    return TaskSequence(f"permuted_digits_{n_tasks}", tasks,
                        {"name": "permuted_digits", "n_tasks": n_tasks, "seed": seed})


def split_digits(seed: int = 0) -> TaskSequence:
    """SplitDigits: 5 tasks of 2 classes, (0,1), (2,3), ..., (8,9); labels 0/1 per task."""
    tasks = _split(_digits_split(_check_seed(seed)), (1, 8, 8), "digits")
    return TaskSequence("split_digits", tasks, {"name": "split_digits", "seed": seed})


def _images(dataset: str, seed: int, n_train: int | None, n_test: int | None,
            padding: bool, data_dir: str | None, download: bool) -> tuple[np.ndarray, ...]:
    """MNIST-like images as float32 in [0, 1], flattened ``(N, 784)`` (``(N, 1024)`` padded
    to 32x32 as in the paper), with optional seeded subsets of ``n_train``/``n_test``."""
    check_choice("dataset", dataset, tuple(DATASETS))
    seed, padding, download = _check_seed(seed), check_bool("padding", padding), \
        check_bool("download", download)
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if n is not None:
            check_int(name, n, lo=None)  # the range is checked against the data below
    if data_dir is not None and not isinstance(data_dir, (str, Path)):
        raise TypeError(f"data_dir must be a folder path or None, got {data_dir!r}")
    x_tr, y_tr, x_te, y_te = load_dataset(dataset, data_dir=data_dir, download=download)
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
    _check_n_tasks(n_tasks)
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


MAX_TASKS = 10_000


def _check_n_tasks(n_tasks: Any) -> None:
    if not is_int(n_tasks) or not 1 <= n_tasks <= MAX_TASKS:
        raise ValueError(f"n_tasks must be an integer >= 1 and <= {MAX_TASKS}, got {n_tasks!r}")


def _check_seed(seed: Any) -> int:
    return check_int("seed", seed, 0, 2**32 - 2)


@dataclass(frozen=True)
class BenchmarkSpec:
    """One benchmark, everything the rest of hnviz asks of it (nothing else tests a
    benchmark's name): ``build`` (keyword options, see :func:`options`), ``options_of``
    the function whose signature lists them (``fixed``: those it sets itself, e.g. the
    dataset), ``n_tasks`` the default task count of a benchmark that takes one (None: a
    fixed length), ``seeded`` whether a run passes its data seed (the toy keeps the
    authors' seed 42), ``fast`` the CPU-sized data subset of the short setting (None: it
    is CPU-sized already), ``in_shape(options)`` one input ``(C, H, W)`` (``(1,)`` for
    the toy), ``items(options)`` the inputs it holds (train + test, all tasks together)
    and ``copies`` the bytes each holds per input number (float32, plus a float32 target
    for regression), ``per_task_bytes`` what each task adds (a permutation per pixel),
    ``metric`` what its tasks are scored by ("accuracy" or "mse"), ``preset`` the family of
    config presets its runs use (``<preset>``, ``<preset>_fast``, ...; None: its name)."""

    name: str
    build: Callable[..., TaskSequence]
    in_shape: Callable[[dict[str, Any]], tuple[int, ...]]
    items: Callable[[dict[str, Any]], int]
    n_tasks: int | None = None
    seeded: bool = True
    fast: dict[str, Any] | None = None
    options_of: Callable[..., TaskSequence] | None = None
    fixed: tuple[str, ...] = ()
    copies: int = 4
    per_task_bytes: int = 0
    metric: str = "accuracy"
    preset: str | None = None

    def options(self) -> tuple[str, ...]:
        fn = self.options_of or self.build
        return tuple(p for p in inspect.signature(fn).parameters if p not in self.fixed)

    def data_bytes(self, opts: dict[str, Any]) -> int:
        """About how many bytes the benchmark with options ``opts`` holds in memory."""
        pixels = math.prod(self.in_shape(opts))
        n_tasks = opts.get("n_tasks", self.n_tasks) if self.n_tasks else 1
        return self.items(opts) * pixels * self.copies + n_tasks * pixels * self.per_task_bytes


def _image_shape(opts: dict[str, Any]) -> tuple[int, ...]:
    side = 32 if opts.get("padding") else 28
    return (1, side, side)


def _image_items(opts: dict[str, Any]) -> int:
    return (opts.get("n_train") or 60000) + (opts.get("n_test") or 10000)


def _digit_items(opts: dict[str, Any]) -> int:
    return 1797


_DIGIT_SHAPE, _PERMUTATION = (lambda opts: (1, 8, 8)), 8  # int64 index per pixel and task
_IMAGES = {"in_shape": _image_shape, "items": _image_items}
SPECS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in (
    BenchmarkSpec("toy_regression", toy_regression, lambda opts: (1,),
                  lambda opts: 3 * (opts.get("n_train", 100) + opts.get("n_test", 50)),
                  seeded=False, copies=8, metric="mse"),
    BenchmarkSpec("permuted_digits", permuted_digits, _DIGIT_SHAPE, _digit_items, n_tasks=10,
                  per_task_bytes=_PERMUTATION),
    BenchmarkSpec("split_digits", split_digits, _DIGIT_SHAPE, _digit_items),
    BenchmarkSpec("permuted_mnist", permuted_mnist, n_tasks=10, fast={"n_train": 10000},
                  per_task_bytes=_PERMUTATION, **_IMAGES),
    BenchmarkSpec("permuted_fashion_mnist", permuted_fashion_mnist, n_tasks=10,
                  fast={"n_train": 10000}, options_of=permuted_mnist, fixed=("dataset",),
                  per_task_bytes=_PERMUTATION, **_IMAGES),
    BenchmarkSpec("split_mnist", split_mnist, fast={}, **_IMAGES),
    BenchmarkSpec("split_fashion_mnist", split_fashion_mnist, fast={}, options_of=split_mnist,
                  fixed=("dataset",), **_IMAGES),
)}
BENCHMARKS: dict[str, Callable[..., TaskSequence]] = {n: s.build for n, s in SPECS.items()}
# CPU-sized data for the fast presets: seeded training subsets (the test sets stay whole).
FAST_DATA: dict[str, dict[str, Any]] = {n: s.fast for n, s in SPECS.items() if s.fast is not None}


def options(name: str) -> tuple[str, ...]:
    """The keyword options of benchmark ``name``."""
    return SPECS[name].options()


def get_spec(name: Any) -> BenchmarkSpec:
    """The spec of benchmark ``name``; a ``ValueError`` listing the benchmarks otherwise."""
    return SPECS[check_benchmark(name)]


def check_benchmark(name: Any) -> str:
    """``name`` if it is one of ``BENCHMARKS``, else a ``ValueError`` listing them."""
    if not isinstance(name, str) or name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {', '.join(BENCHMARKS)}")
    return name


def get_benchmark(name: str, **kwargs: Any) -> TaskSequence:
    """Build a benchmark by name (one of ``BENCHMARKS``) with its keyword options."""
    check_benchmark(name)
    unknown = sorted(set(kwargs) - set(options(name)))
    if unknown:
        raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for {name}; it "
                         f"takes {', '.join(options(name)) or 'none'}")
    return BENCHMARKS[name](**kwargs)


UNTRUSTED_MAX_TASKS = 1000  # a spec read from someone's files builds at most this many
MAX_DATA_ENV = "HNVIZ_MAX_DATA_GB"


def data_bytes(name: str, spec: dict[str, Any]) -> int:
    """About how many bytes benchmark ``name`` with options ``spec`` holds in memory (the
    inputs once, plus one permutation per permuted task): :meth:`BenchmarkSpec.data_bytes`."""
    return SPECS[name].data_bytes(spec)


def max_data_bytes() -> float:
    """The most data a spec read from files may build: ``$HNVIZ_MAX_DATA_GB`` (default 8)
    gigabytes, a finite number > 0 (else ``ValueError``: nan would switch the limit off)."""
    raw = os.environ.get(MAX_DATA_ENV, "").strip() or "8"
    try:
        limit = float(raw) * 2**30
    except ValueError:
        limit = math.nan
    if not (math.isfinite(limit) and limit > 0):
        raise ValueError(f"{MAX_DATA_ENV}={raw!r} must be a finite number of gigabytes > 0, "
                         f"e.g. {MAX_DATA_ENV}=8")
    return limit


def _check_untrusted(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A saved spec made safe to build: no download, at most ``UNTRUSTED_MAX_TASKS`` tasks
    and ``$HNVIZ_MAX_DATA_GB`` (default 8) GB of data."""
    spec = {**spec, "download": False} if "download" in spec else spec
    n_tasks = spec.get("n_tasks", 1)
    if is_int(n_tasks) and n_tasks > UNTRUSTED_MAX_TASKS:
        raise ValueError(f"the saved benchmark spec asks for {n_tasks} tasks; a spec read from "
                         f"files builds at most {UNTRUSTED_MAX_TASKS}")
    limit = max_data_bytes()
    need = data_bytes(name, {k: v for k, v in spec.items() if is_int(v) or isinstance(v, bool)})
    if need > limit:
        raise ValueError(f"the saved benchmark spec ({name}"
                         f"{f', {n_tasks} tasks' if 'n_tasks' in spec else ''}) would hold "
                         f"{need / 2**30:.1f} GB of data, more than {limit / 2**30:g} GB; set "
                         f"{MAX_DATA_ENV} higher to build it")
    return spec


def from_spec(spec: dict[str, Any], trusted: bool = True) -> TaskSequence:
    """Rebuild a sequence from its ``TaskSequence.spec`` (as saved in a run directory).
    ``trusted=False`` (a spec from files, e.g. :meth:`hnviz.store.runs.Run.tasks`): never
    downloads, and refuses more than ``UNTRUSTED_MAX_TASKS`` tasks or
    ``$HNVIZ_MAX_DATA_GB`` of data."""
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ValueError(f"a benchmark spec must be a JSON object with a 'name' (one of "
                         f"{', '.join(BENCHMARKS)}), got {spec!r:.200}")
    spec = dict(spec)
    scenario = spec.pop("scenario", None)
    name = spec.pop("name")
    if not trusted:
        spec = _check_untrusted(name, spec)
    tasks = get_benchmark(name, **spec)
    return tasks if scenario is None else apply_scenario(tasks, scenario)
