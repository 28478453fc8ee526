"""Checks of a sweep spec's values (:mod:`hnviz.experiments.sweep_spec`), each by type: plain data
only (text, numbers, true/false, null, lists and mappings with text keys, nested at most
``MAX_DEPTH`` deep), sweep files without repeated keys, and the settings whose mistakes
would otherwise surface late (seeds, methods, resources, repeated values). Each bad value
is one ``ValueError`` line naming it as written and the fix."""
from __future__ import annotations

import datetime
import json
from pathlib import Path
from typing import Any

import numpy as np

from ..learners.methods import check_methods
from .compare import MAX_SEED, MAX_SEEDS  # a sweep's seeds are a comparison's
from ..core.validate import check_real, is_int

MAX_DEPTH = 32  # a spec is at most ~6 deep (space -> field -> values -> layer sizes)
MAX_ITEMS = 100_000  # entries of one list (a grid axis, the points: at most 10,000 trials)
MAX_CPUS = 4096
MAX_GPUS = 1024
MIN_SHARE = 1e-4  # the smallest fraction of a CPU or GPU Ray hands out
SEEDS_FIX = "e.g. seeds: 3 or seeds: [0, 1, 2]"


class DuplicateKeyError(ValueError):
    """A mapping of a sweep file names one key twice."""


def shown(value: Any, limit: int = 80) -> str:
    """``value`` as the user wrote it (its repr), cut to ``limit`` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 4] + " ..."


def _deep(where: str) -> ValueError:
    return ValueError(f"{where or 'the sweep spec'} is nested more than {MAX_DEPTH} levels "
                      "deep; a sweep file holds settings, lists of values and points, no deeper")


def _what(value: Any) -> str:
    if isinstance(value, (datetime.date, datetime.time)):
        return "a date"  # YAML reads 2020-01-01 as one
    if isinstance(value, (set, frozenset)):
        return "a set"
    if isinstance(value, np.ndarray):
        return "a numpy array"
    return f"a {type(value).__name__}"


def plain(name: str, value: Any, depth: int = 0) -> Any:
    """``value`` as plain data (tuples and ranges as lists, numpy numbers as Python
    numbers), or a ValueError naming the entry (``name``, e.g. ``fixed.lr``) that is not:
    a date, set, bytes or other object, a key that is not text, nesting past
    ``MAX_DEPTH`` (checked before each level, so the recursion stays shallow)."""
    if depth > MAX_DEPTH:
        raise _deep(name)
    if isinstance(value, dict):
        for k in value:
            if not isinstance(k, str):
                raise ValueError(f"{name or 'the sweep spec'}: the key {shown(k)} is not text; "
                                 "write setting and field names as text, e.g. beta")
        return {k: plain(f"{name}.{k}" if name else k, v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, range)):
        if len(value) > MAX_ITEMS:
            raise ValueError(f"{name} has {len(value):,} entries; a sweep list holds at most "
                             f"{MAX_ITEMS:,}: narrow it")
        return [plain(f"{name}[{i}]", v, depth + 1) for i, v in enumerate(value)]
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (np.bool_, np.integer, np.floating)):
        return value.item()
    what = _what(value)
    written = value.isoformat() if what == "a date" else shown(value, 40)
    raise ValueError(f"{name} is {what} ({written}); a sweep takes text, numbers, "
                     "true/false, lists and mappings: write it as one of those"
                     + (" (a date in quotes, as text)" if what == "a date" else ""))


def unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``json.loads``'s ``object_pairs_hook``: a dict, or DuplicateKeyError for a key
    named twice (json would keep the last)."""
    out: dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise DuplicateKeyError(f"key {k!r} appears twice in one mapping; keep one")
        out[k] = v
    return out


def yaml_checks(text: str, path: Path) -> None:
    """Refuse YAML anchors and aliases (a few bytes of them can expand to gigabytes) and
    nesting past ``MAX_DEPTH``, from the parser's events, before anything is built."""
    import yaml

    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, yaml.AliasEvent):
            raise ValueError(f"{path} uses a YAML alias (*{event.anchor}); sweep files take "
                             "plain values only: write the values out")
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH + 1:  # the file's own mapping is level 0
                raise _deep(f"{path} (line {event.start_mark.line + 1})")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def yaml_load(text: str) -> Any:
    """``yaml.safe_load`` that refuses a mapping naming a key twice (DuplicateKeyError
    with both lines) instead of keeping the last."""
    import yaml

    class UniqueKeyLoader(yaml.SafeLoader):
        def construct_mapping(self, node: Any, deep: bool = False) -> dict:
            if isinstance(node, yaml.MappingNode):
                lines: dict[Any, int] = {}
                for key_node, _ in node.value:
                    if key_node.tag == "tag:yaml.org,2002:merge":
                        continue  # <<: a merged mapping, which its own keys override
                    key, line = self.construct_object(key_node, deep=True), \
                        key_node.start_mark.line + 1
                    try:
                        if key in lines:
                            raise DuplicateKeyError(f"key {key!r} appears twice in one mapping "
                                                    f"(lines {lines[key]} and {line}); keep one")
                        lines[key] = line
                    except TypeError:
                        continue  # an unhashable key: safe_load's own error names it
            return super().construct_mapping(node, deep)

    return yaml.load(text, Loader=UniqueKeyLoader)


def _key(value: Any) -> str:
    """One text per distinct value: 1 and 1.0 are one value (one config), True is not 1."""
    def canon(v: Any) -> Any:
        if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
            return int(v)
        if isinstance(v, list):
            return [canon(x) for x in v]
        if isinstance(v, dict):
            return {k: canon(x) for k, x in v.items()}
        return v
    return json.dumps(canon(value), sort_keys=True)


def repeats(values: list[Any]) -> list[Any]:
    """The values (plain data) that repeat an earlier one, in order; [] when none do."""
    seen, out = set(), []
    for v in values:
        key = _key(v)
        if key in seen:
            out.append(v)
        seen.add(key)
    return out


def check_seeds(value: Any) -> list[int]:
    """``seeds``: a count n (seeds 0..n-1) or a list of distinct seeds."""
    def bad() -> ValueError:
        return ValueError(f"seeds must be an integer >= 1 and <= {MAX_SEEDS} (seeds 0..n-1) or "
                          f"a list of 1 to {MAX_SEEDS} distinct integers from 0 to {MAX_SEED}, "
                          f"got {shown(value)}; {SEEDS_FIX}")
    if is_int(value):
        if not 1 <= value <= MAX_SEEDS:
            raise bad()
        return list(range(int(value)))
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_SEEDS \
            or not all(is_int(s) and 0 <= s <= MAX_SEED for s in value):
        raise bad()
    seeds = [int(s) for s in value]
    repeat = repeats(seeds)
    if repeat:
        raise ValueError(f"seeds {shown(value)} repeat seed {repeat[0]}; each seed is one trial "
                         f"per point: list distinct seeds, {SEEDS_FIX}")
    return seeds


def check_method_list(value: Any) -> list[str]:
    """``methods``: one method name or a list of distinct ones."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        raise ValueError(f"methods must be a method name or a list of them, got {shown(value)}; "
                         "e.g. methods: [hnet, ewc]")
    repeat = repeats(value)
    if repeat:
        raise ValueError(f"methods {shown(value)} repeat {shown(repeat[0])}; list each method once")
    return check_methods(value)


def check_resources(value: Any) -> dict[str, float]:
    """``resources``: CPUs (> 0) and GPUs (>= 0) per trial, as Ray can hand them out."""
    if not isinstance(value, dict):
        raise ValueError(f"resources must be a mapping of cpu and gpu per trial, got "
                         f"{shown(value)}; e.g. resources: {{cpu: 1, gpu: 0}}")
    res = {"cpu": 1, "gpu": 0, **value}
    if set(res) - {"cpu", "gpu"}:
        raise ValueError(f"resources takes cpu and gpu, got {sorted(res)}")
    res["cpu"] = check_real("resources.cpu", res["cpu"], hi=MAX_CPUS)
    res["gpu"] = check_real("resources.gpu", res["gpu"], allow_lo=True, hi=MAX_GPUS)
    for name, q in res.items():
        if 0 < q < MIN_SHARE:
            raise ValueError(f"resources.{name} = {q:g}: Ray hands out at least {MIN_SHARE:g} "
                             f"of a {name.upper()}; ask for {MIN_SHARE:g} or more")
    if res["gpu"] > 1 and not res["gpu"].is_integer():
        raise ValueError(f"resources.gpu = {res['gpu']:g}: above 1, a whole number of GPUs "
                         "(Ray shares out fractions of one GPU only); e.g. gpu: 1 or gpu: 2")
    return res
