"""Benchmarks by name: one :class:`BenchmarkSpec` per benchmark (its builder in
:mod:`hnviz.data.sequences`, options, task count, data seed, short setting, shapes,
memory), built by name or from a saved spec."""
from __future__ import annotations

import inspect
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

from .scenarios import apply_scenario
from .sequences import (MAX_TASKS, TOY_FUNCTIONS, fashion_transfer, permuted_digits,
                        permuted_fashion_mnist, permuted_mnist, rotated_digits, split_cifar10,
                        split_cifar10_100, split_digits, split_fashion_mnist, split_mnist,
                        toy_regression, toy_variant)
from ..core.tasks import Task, TaskSequence  # Task: hnviz.benchmarks.Task of 0.2 still works
from ..core.validate import is_int

__all__ = ["BENCHMARKS", "COUNTED", "FAST_DATA", "MAX_TASKS", "SPECS", "TOY_FUNCTIONS",
           "BenchmarkSpec", "Task", "fashion_transfer", "data_bytes", "from_spec",
           "get_benchmark", "get_spec", "options",
           "permuted_digits", "permuted_fashion_mnist", "permuted_mnist", "rotated_digits",
           "split_cifar10", "split_cifar10_100", "split_digits",
           "split_fashion_mnist", "split_mnist", "toy_regression", "toy_variant"]


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


DIGIT_IMAGES = 1797  # scikit-learn's 8x8 digits, train and test together


def _digit_items(opts: dict[str, Any]) -> int:
    return DIGIT_IMAGES


def _cifar10_items(opts: dict[str, Any]) -> int:
    return (opts.get("n_train") or 50000) + (opts.get("n_test") or 10000)


def _cifar10_100_items(opts: dict[str, Any]) -> int:
    """CIFAR-10 whole, then five CIFAR-100 tasks of 5,000 + 1,000 images (or subsets)."""
    n_train, n_test = opts.get("n_train"), opts.get("n_test")
    return _cifar10_items(opts) + 5 * (min(n_train or 5000, 5000) + min(n_test or 1000, 1000))


def _transfer_items(opts: dict[str, Any]) -> int:
    """30,000 images of the first task, n_per_class x 5 of each later one, 6 x 5,000 test
    (or n_test)."""
    return 30000 + 25 * (opts.get("n_per_class") or 20) + 6 * (opts.get("n_test") or 5000)


_CIFAR_SHAPE = lambda opts: (3, 32, 32)  # noqa: E731
_CIFAR_FAST = {"n_train": 1000, "n_test": 500}  # a CPU smoke run, not a result
_DIGIT_SHAPE, _PERMUTATION = (lambda opts: (1, 8, 8)), 8  # int64 index per pixel and task
_IMAGES = {"in_shape": _image_shape, "items": _image_items}
SPECS: dict[str, BenchmarkSpec] = {spec.name: spec for spec in (
    BenchmarkSpec("toy_regression", toy_regression, lambda opts: (1,),
                  lambda opts: 3 * (opts.get("n_train", 100) + opts.get("n_test", 50)),
                  seeded=False, copies=8, metric="mse"),
    BenchmarkSpec("permuted_digits", permuted_digits, _DIGIT_SHAPE, _digit_items, n_tasks=10,
                  per_task_bytes=_PERMUTATION),
    BenchmarkSpec("split_digits", split_digits, _DIGIT_SHAPE, _digit_items),
    BenchmarkSpec("rotated_digits", rotated_digits, _DIGIT_SHAPE, lambda opts: 0, n_tasks=4,
                  per_task_bytes=DIGIT_IMAGES * 4, preset="permuted_digits"),  # a turned copy each
    BenchmarkSpec("permuted_mnist", permuted_mnist, n_tasks=10, fast={"n_train": 10000},
                  per_task_bytes=_PERMUTATION, **_IMAGES),
    BenchmarkSpec("permuted_fashion_mnist", permuted_fashion_mnist, n_tasks=10,
                  fast={"n_train": 10000}, options_of=permuted_mnist, fixed=("dataset",),
                  per_task_bytes=_PERMUTATION, **_IMAGES),
    BenchmarkSpec("split_mnist", split_mnist, fast={}, **_IMAGES),
    BenchmarkSpec("split_fashion_mnist", split_fashion_mnist, fast={}, options_of=split_mnist,
                  fixed=("dataset",), **_IMAGES),
    BenchmarkSpec("fashion_transfer", fashion_transfer, lambda opts: (1, 28, 28),
                  _transfer_items, fast={}),
    BenchmarkSpec("split_cifar10", split_cifar10, _CIFAR_SHAPE, _cifar10_items, fast=_CIFAR_FAST),
    BenchmarkSpec("split_cifar10_100", split_cifar10_100, _CIFAR_SHAPE, _cifar10_100_items,
                  fast=_CIFAR_FAST),
)}
BENCHMARKS: dict[str, Callable[..., TaskSequence]] = {n: s.build for n, s in SPECS.items()}
# CPU-sized data for the fast presets: seeded training subsets (the test sets stay whole).
FAST_DATA: dict[str, dict[str, Any]] = {n: s.fast for n, s in SPECS.items() if s.fast is not None}
# the benchmarks that take a task count (--tasks)
COUNTED: tuple[str, ...] = tuple(n for n, s in SPECS.items() if s.n_tasks is not None)


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
    check_benchmark(name)
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
