"""What a sweep runs: its spec (a dict, or a YAML/JSON file), checked up front, and its
trials, every (method, seed, point) triple with a stable id.

A spec::

    benchmark: permuted_digits          # one of hnviz.BENCHMARKS
    benchmark_options: {n_tasks: 10}    # its keyword options
    scenario: cl1
    preset: permuted_digits             # default: the benchmark's
    methods: [hnet, ewc]                # hnet and/or baselines
    seeds: [0, 1]                       # or a number n: seeds 0..n-1
    search: grid                        # or random (num_samples points, sample_seed),
                                        #   or points (space: a list of points)
    space:                              # config field -> values (grid) or a distribution
      beta: [0.01, 0.05]                #   (random: {uniform|loguniform: [lo, hi]},
      hnet_hidden: [[32, 32], [64, 64]] #    {randint: [lo, hi]}, {choice: [...]}, or a list)
    fixed: {n_steps: 300}               # config changes for every trial
    resources: {cpu: 1, gpu: 0}         # per trial (gpu may be a fraction)

Each method takes the fields of its own config (:class:`hnviz.HyperCLConfig` for hnet,
:class:`hnviz.BaselineConfig` for the baselines): a baseline ignores ``beta`` and an HNET
ignores ``ewc_lambda``, so a method gets one trial per distinct point of its own fields.
A field that no method has is an error, and so is a repeated seed, method, grid value or
point; every value is checked by type first (:mod:`hnviz.experiments.sweep_checks`).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.benchmarks import BENCHMARKS, get_spec, options
from .compare import make_learner
from ..learners.methods import DEFAULT_METHOD, get_method
from ..learners.config import PRESETS
from ..data.scenarios import check_scenario
from ..io.safeio import read_regular
from .sweep_checks import (DuplicateKeyError, check_method_list, check_resources, check_seeds,
                           plain, repeats, shown, unique_pairs, yaml_checks, yaml_load)
from ..core.validate import check_choice, check_int, check_real

SEARCHES = ("grid", "random", "points")
SPEC_KEYS = ("benchmark", "benchmark_options", "scenario", "preset", "methods", "seeds",
             "search", "num_samples", "sample_seed", "space", "fixed", "resources")
DISTRIBUTIONS = ("uniform", "loguniform", "randint", "choice")


CONTEXT_KEYS = ("benchmark", "benchmark_options", "scenario", "preset")


@dataclass(frozen=True)
class Trial:
    """One run of a sweep: ``method`` with ``seed`` and config changes ``params`` on the
    ``context`` (the spec's benchmark, its options, scenario and preset)."""

    method: str
    seed: int
    params: dict[str, Any]
    context: dict[str, Any]

    @property
    def trial_id(self) -> str:
        """``<method>-seed<k>-<10 hex digits of params and context>``: the same trial, the
        same id; another benchmark, option, scenario or preset, another id."""
        key = json.dumps([self.params, self.context], sort_keys=True)
        point = hashlib.sha256(key.encode()).hexdigest()[:10]
        return f"{self.method}-seed{self.seed}-{point}"

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "seed": self.seed, "params": self.params,
                "context": self.context}


MAX_SPEC_BYTES = 2**20
MAX_TRIALS = 10_000
MAX_SAMPLE_SEED = 2**32 - 1  # numpy's RandomState
MAX_RANDINT = 2**31 - 1


def _known_settings(spec: dict[str, Any]) -> None:
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"unknown sweep setting(s) {unknown}; use {', '.join(SPEC_KEYS)}")


def load_spec(path: str | Path) -> dict[str, Any]:
    """A sweep spec from a ``.yaml``/``.yml`` or ``.json`` file (any case): plain data
    only (``yaml.safe_load`` without aliases, no key twice in a mapping, nested at most
    ``MAX_DEPTH`` deep), known settings only, at most 1 MiB."""
    path = Path(path)
    try:
        text = read_regular(path, MAX_SPEC_BYTES, "sweep file").decode()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read sweep file {path}: {e}") from e
    if path.suffix.lower() in (".yaml", ".yml"):
        import yaml

        def parse(text: str) -> Any:
            yaml_checks(text, path)  # aliases and depth, from the events
            return yaml_load(text)
        errors: tuple[type[Exception], ...] = (yaml.YAMLError, RecursionError)
    elif path.suffix.lower() == ".json":
        def parse(text: str) -> Any:
            return json.loads(text, object_pairs_hook=unique_pairs)
        errors = (ValueError, RecursionError)
    else:
        raise ValueError(f"{path}: a sweep file ends in .yaml, .yml or .json")
    try:
        spec = parse(text)
    except DuplicateKeyError as e:
        raise ValueError(f"{path}: {e}") from None
    except errors as e:
        raise ValueError(f"{path} does not parse: {str(e)[:300]}") from None
    if not isinstance(spec, dict):
        raise ValueError(f"{path} must hold a mapping of sweep settings ({', '.join(SPEC_KEYS)})")
    spec = plain("", spec)
    _known_settings(spec)  # before they become hnviz.sweep's keyword arguments
    return spec


def check_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with defaults filled in, or a ValueError naming the bad entry."""
    if not isinstance(spec, dict):
        raise ValueError(f"a sweep spec must be a dict of sweep settings, got {shown(spec)}")
    out = plain("", spec)  # every value by type: text, numbers, lists, mappings
    _known_settings(out)
    check_choice("benchmark", out.get("benchmark"), tuple(BENCHMARKS))
    out.setdefault("benchmark_options", {})
    if not isinstance(out["benchmark_options"], dict):
        raise ValueError(f"benchmark_options must be a mapping of the benchmark's options, got "
                         f"{shown(out['benchmark_options'])}; e.g. benchmark_options: "
                         "{n_tasks: 5}")
    unknown = sorted(set(out["benchmark_options"]) - set(options(out["benchmark"])))
    if unknown:
        raise ValueError(f"unknown benchmark_options {unknown} for {out['benchmark']}; it "
                         f"takes {', '.join(options(out['benchmark'])) or 'none'}")
    out["scenario"] = check_scenario(out.get("scenario", "cl1"))
    out.setdefault("preset", get_spec(out["benchmark"]).preset or out["benchmark"])
    check_choice("preset", out["preset"], tuple(PRESETS))
    out["methods"] = check_method_list(out.get("methods", [DEFAULT_METHOD]))
    out["seeds"] = check_seeds(out.get("seeds", [0]))
    out["search"] = check_choice("search", out.get("search", "grid"), SEARCHES)
    out["num_samples"] = check_int("num_samples", out.get("num_samples", 1), 1, MAX_TRIALS)
    out["sample_seed"] = check_int("sample_seed", out.get("sample_seed", 0), 0, MAX_SAMPLE_SEED)
    out.setdefault("space", [] if out["search"] == "points" else {})
    out.setdefault("fixed", {})
    if not isinstance(out["fixed"], dict):
        raise ValueError(f"fixed must be a mapping of config field -> value, got "
                         f"{shown(out['fixed'])}; e.g. fixed: {{n_steps: 300}}")
    if out["search"] == "points":
        if not isinstance(out["space"], list) or not out["space"] or not all(
                isinstance(p, dict) for p in out["space"]):
            raise ValueError("with search: points, space must be a non-empty list of points "
                             "(mappings of config field -> value)")
        repeat = repeats(out["space"])
        if repeat:
            raise ValueError(f"space lists the point {shown(repeat[0])} twice; list each point "
                             "once")
    elif not isinstance(out["space"], dict):
        raise ValueError(f"space must be a mapping of config field -> values, got "
                         f"{shown(out['space'])}; e.g. space: {{beta: [0.01, 0.1]}}")
    overlap = sorted(set(space_fields(out)) & set(out["fixed"]))
    if overlap:
        raise ValueError(f"{overlap} both in space and fixed; put each field in one")
    out["resources"] = check_resources(out.get("resources", {}))
    return out


def space_fields(spec: dict[str, Any]) -> list[str]:
    """The config fields a checked spec's space varies, in the order they are named."""
    space = spec["space"]
    return list(dict.fromkeys(k for p in space for k in p) if isinstance(space, list)
                else space)


def _values(name: str, value: Any, search: str) -> Any:
    if isinstance(value, list):
        if not value:
            raise ValueError(f"space.{name} is an empty list; give at least one value")
        repeat = repeats(value) if search == "grid" else []  # random: a weight
        if repeat:
            raise ValueError(f"space.{name} {shown(value)} repeats {shown(repeat[0])}; list each "
                             "value once")
        return value
    if search == "grid" or not isinstance(value, dict) or len(value) != 1 \
            or next(iter(value)) not in DISTRIBUTIONS:
        kinds = "a list of values" if search == "grid" else \
            f"a list or one of {{{', '.join(DISTRIBUTIONS)}: ...}}"
        raise ValueError(f"space.{name} must be {kinds}, got {shown(value)}")
    (kind, args), = value.items()
    if kind == "choice" and not (isinstance(args, list) and args):
        raise ValueError(f"space.{name}: choice needs a non-empty list of values, got "
                         f"{shown(args)}; e.g. {{choice: [0.01, 0.1]}}")
    return value


def _sample(name: str, dist: Any, rng: np.random.RandomState) -> Any:
    if isinstance(dist, list):
        return dist[rng.randint(len(dist))]
    (kind, args), = dist.items()
    if kind == "choice":
        return _sample(name, args, rng)
    if not (isinstance(args, list) and len(args) == 2):
        raise ValueError(f"space.{name}: {kind} needs [low, high], got {args!r}")
    lo, hi = args
    if kind == "randint":
        lo = check_int(f"space.{name} low", lo, -MAX_RANDINT, MAX_RANDINT)
        hi = check_int(f"space.{name} high", hi, -MAX_RANDINT, MAX_RANDINT)
        if hi < lo:
            raise ValueError(f"space.{name}: randint needs low <= high, got {args}")
        return int(rng.randint(lo, hi + 1))
    floor = -np.inf if kind == "uniform" else 0.0  # loguniform: positive bounds
    lo = check_real(f"space.{name} low", lo, floor)
    hi = check_real(f"space.{name} high", hi, lo, allow_lo=True)
    if kind == "uniform":
        return float(rng.uniform(lo, hi))
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


def points(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """The checked spec's points in the space: grid, the product of the value lists;
    random, ``num_samples`` draws with ``sample_seed`` (the same points on every call);
    points, the listed points. A sweep of more than ``MAX_TRIALS`` trials is refused
    before anything is expanded."""
    listed = spec["search"] == "points"
    space = {} if listed else {k: _values(k, v, spec["search"])
                               for k, v in spec["space"].items()}
    n = len(spec["space"]) if listed else spec["num_samples"] if spec["search"] == "random" \
        else math.prod(len(v) for v in space.values())
    total = n * len(spec["seeds"]) * len(spec["methods"])
    if total > MAX_TRIALS:
        raise ValueError(f"the sweep would have {total:,} trials ({n:,} points x "
                         f"{len(spec['seeds'])} seeds x {len(spec['methods'])} methods); at most "
                         f"{MAX_TRIALS:,}: narrow the space or the seeds")
    if listed:
        return [dict(p) for p in spec["space"]]
    if spec["search"] == "grid":
        return [dict(zip(space, combo)) for combo in itertools.product(*space.values())]
    rng = np.random.RandomState(spec["sample_seed"])
    return [{k: _sample(k, v, rng) for k, v in space.items()} for _ in range(spec["num_samples"])]


def expand(spec: dict[str, Any]) -> list[Trial]:
    """The sweep's trials: for each method, every distinct point of its own fields (plus
    ``fixed``) x seed; each config is built once to check it, so a bad value raises here,
    before anything runs."""
    spec = check_spec(spec)
    fields = {m: get_method(m).fields for m in spec["methods"]}
    named = set(space_fields(spec)) | set(spec["fixed"])
    unknown = sorted(named - set().union(*fields.values()))
    if unknown:
        raise ValueError(f"unknown config field(s) {unknown} for methods {spec['methods']}; "
                         f"fields: {', '.join(sorted(set().union(*fields.values())))}")
    context = {k: spec[k] for k in CONTEXT_KEYS}
    trials = []
    for method in spec["methods"]:
        seen = set()
        for point in points(spec):
            params = {k: v for k, v in {**spec["fixed"], **point}.items() if k in fields[method]}
            key = json.dumps(params, sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            try:
                make_learner(method, spec["preset"], spec["scenario"], 0, False, **params)
            except (TypeError, ValueError) as e:
                raise ValueError(f"sweep point {point} for {method}: {e}") from e
            trials += [Trial(method, seed, params, context) for seed in spec["seeds"]]
    return trials
