"""How many threads torch uses while hnviz trains (docs/guide.md, "Threads").

torch starts one intra-op thread per core. On a machine where another process keeps a
core busy (the browser next to a notebook, a second kernel, a sweep trial), those
threads wait on each other and a training step takes several times longer than with one.
Which count is faster depends on the machine, the problem size and what else runs, and
it changes while a run trains; so ``threads="auto"`` (the default) measures it: every
``PROBE_EVERY`` steps it times ``PROBE_STEPS`` steps at each candidate count (torch's
own default count and 1) and trains at the faster one until the next probe.

``threads=N`` (a learner's argument, ``--threads`` on the command line, or the
environment variable ``HNVIZ_THREADS``) fixes the count instead. torch's own setting is
put back when training returns.

The count changes the last bits of a step's sums, and those grow over a run: on our
2-core machine a PermutedDigits run at 1 thread and the same run at 2 ended with weights
that differ in the third digit. Under "auto" the count follows the machine's load, so
two runs with the same seed, or a run and its resumption from a checkpoint, can differ
that much; fix the count (``threads=1``, ``HNVIZ_THREADS=1``, ``--threads 1``) where a
run must repeat bit for bit (the test suite runs with ``HNVIZ_THREADS=1``). A sweep
trial trains at the count its ``resources.cpu`` reserves.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from .validate import env_setting

ENV = "HNVIZ_THREADS"
PROBE_EVERY = 500  # steps between probes
PROBE_STEPS = 8  # steps timed at each candidate count (the median counts)
MAX_THREADS = 1024


def check_threads(value: Any, name: str = "threads") -> int | str:
    """``value`` as a thread setting: a positive int or "auto"; else one ValueError line."""
    if isinstance(value, str) and value.strip().lower() == "auto":
        return "auto"
    try:
        n = int(value)
        ok = 1 <= n <= MAX_THREADS and float(value) == n and \
            not type(value).__name__.startswith("bool")  # bool, numpy.bool_
    except (TypeError, ValueError, OverflowError):
        ok = False
    if not ok:
        raise ValueError(f"{name}={value!r} must be a whole number from 1 to {MAX_THREADS} or "
                         f"'auto', e.g. {name}=2 or {name}=auto")
    return n


def resolve(threads: Any = None) -> int | str:
    """The setting in force: ``threads`` if given, else ``$HNVIZ_THREADS``, else "auto"."""
    if threads is not None:
        return check_threads(threads)
    return env_setting(ENV, check_threads) or "auto"


class ThreadPolicy:
    """Sets torch's thread count at each training step (:meth:`tick`): a fixed count, or
    the faster of ``candidates`` as last measured (``"auto"``)."""

    def __init__(self, setting: int | str, default: int):
        self.setting = setting
        self.candidates = sorted({max(1, default), 1}, reverse=True)
        self.chosen = self.candidates[0] if setting == "auto" else int(setting)
        self.fixed = setting != "auto" or len(self.candidates) == 1  # nothing to measure
        self.timings: dict[int, list[float]] = {}  # the last probe's step times per count
        self._probe: list[int] = []  # counts still to time in this probe, in order
        self._steps, self._last = 0, None
        torch.set_num_threads(self.chosen)

    def tick(self) -> None:
        """Call before each training step."""
        if self.fixed:
            return
        now = time.perf_counter()
        if self._probe and self._last is not None:  # the step just done was a probe step
            self.timings.setdefault(self._probe[0], []).append(now - self._last)
            if len(self.timings[self._probe[0]]) >= PROBE_STEPS:
                self._probe.pop(0)
                if not self._probe:
                    self.chosen = min(self.timings, key=lambda n: sorted(self.timings[n])[
                        len(self.timings[n]) // 2])
        if self._steps % PROBE_EVERY == 0 and not self._probe:
            self.timings, self._probe = {}, list(self.candidates)
        threads = self._probe[0] if self._probe else self.chosen
        if torch.get_num_threads() != threads:
            torch.set_num_threads(threads)
        self._steps += 1
        self._last = time.perf_counter()


_active: list[ThreadPolicy] = []  # the policy of the training under way (innermost last)


@contextmanager
def training_threads(threads: Any = None) -> Iterator[ThreadPolicy]:
    """Train under ``threads`` (see :func:`resolve`); torch's thread count is restored on
    exit. Nested calls (a learner trained inside another's training) keep the outer one."""
    if _active:
        yield _active[-1]
        return
    before = torch.get_num_threads()
    policy = ThreadPolicy(resolve(threads), before)
    _active.append(policy)
    try:
        yield policy
    finally:
        _active.pop()
        torch.set_num_threads(before)


def tick() -> None:
    """Before a training step: let the active policy set the thread count (no-op outside
    :func:`training_threads`)."""
    if _active:
        _active[-1].tick()
