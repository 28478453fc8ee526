"""The method registry: one entry per continual-learning method, read by comparisons,
sweeps, run loading, checkpoints and the labs (nothing else names a method).

An entry says which learner class trains the method (its ``config_class`` holds the
settings and presets; its ``kind`` names it in run files, so a run loads through the
class), the config settings that make the method what it is (``hnet_tir`` is HyperCL
with ``task_inference="replay"``), the scenarios it runs in, whether it exists to infer
what cl2/cl3 hide, and how a table or a plot labels it. Adding a method: write its
learner (a :class:`hnviz.learners.base.ContinualLearner`), add one :class:`Method` to
``REGISTRY`` (or call :func:`register`), give its config class a preset per benchmark.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from .base import ContinualLearner
from .baselines import BaselineCL
from .dgr import DGR
from .hnet_r import HNetR
from .hypercl import HyperCL

SCENARIOS = ("cl1", "cl2", "cl3")


@dataclass(frozen=True)
class Method:
    """One method. ``settings``: config fields it fixes (not settable by a comparison or
    sweep); ``heads``: "preset" keeps the preset's ``multi_head`` in cl1, "per_task" gives
    one head per task in cl1; in cl2/cl3 every method has one shared head.
    ``hypernetwork``: its weights come from a hypernetwork (compression ratio, plots).
    ``ours``: one of the paper's hypernetwork methods (drawn in the toolkit's colour).
    ``label``: its name in the literature; ``plain``: in plain words, for a class."""

    name: str
    label: str
    plain: str
    learner: type[ContinualLearner]
    settings: dict[str, Any] = field(default_factory=dict)
    scenarios: tuple[str, ...] = SCENARIOS
    heads: str = "per_task"
    hypernetwork: bool = False
    ours: bool = False

    @property
    def config_class(self) -> type:
        return self.learner.config_class

    @property
    def fields(self) -> set[str]:
        """The config fields a comparison or sweep may set for this method."""
        return set(self.config_class.__dataclass_fields__) - set(self.settings)

    def config(self, preset: str, scenario: str, **changes: Any) -> Any:
        """The method's config for ``preset`` under ``scenario``, with ``changes`` (those
        of its fields; the others belong to other methods and are left out)."""
        unknown = sorted(set(changes) - set().union(*(m.fields for m in REGISTRY.values())))
        if unknown:
            raise ValueError(f"unknown config field(s) {unknown}; no method has them")
        own = {k: v for k, v in changes.items() if k in self.fields and v is not None}
        cfg = self.preset_config(preset, **own)
        if scenario != "cl1":
            return cfg.replace(multi_head=False)
        return cfg if self.heads == "preset" else cfg.replace(multi_head=True)

    def preset_config(self, preset: str, **changes: Any) -> Any:
        """The preset's config as it is (its heads too) with the method's settings and
        ``changes``: a lab's learner, outside any scenario."""
        return self.config_class.preset(preset, **self.settings, **changes)

    def make(self, preset: str, scenario: str, seed: int, progress: bool = True,
             **changes: Any) -> ContinualLearner:
        """A learner of this method (see :meth:`config`) seeded with ``seed``."""
        check_scenario_methods([self.name], scenario)
        return self.learner(self.config(preset, scenario, **changes), random_state=seed,
                            progress=progress)


REGISTRY: dict[str, Method] = {}


def register(method: Method) -> Method:
    """Add ``method`` to the registry (a ``ValueError`` if its name is taken)."""
    if method.name in REGISTRY:
        raise ValueError(f"method {method.name!r} is registered already")
    if not set(method.scenarios) <= set(SCENARIOS) or method.heads not in ("preset", "per_task"):
        raise ValueError(f"method {method.name!r}: scenarios must be of {SCENARIOS} and heads "
                         f"'preset' or 'per_task', got {method.scenarios}, {method.heads!r}")
    REGISTRY[method.name] = method
    return method


for _m in (
    Method("hnet", "HNET+ENT", "hypernetwork", HyperCL, heads="preset", hypernetwork=True,
           ours=True),
    Method("hnet_tir", "HNET+TIR", "hypernetwork + replay", HyperCL, {"task_inference": "replay"},
           scenarios=("cl2", "cl3"), hypernetwork=True, ours=True),
    Method("hnet_r", "HNET+R", "hypernetwork replay", HNetR, scenarios=("cl2", "cl3"),
           ours=True),
    Method("dgr", "DGR+distill", "generative replay", DGR, {"method": "dgr"},
           scenarios=("cl2", "cl3")),
    Method("finetune", "fine-tuning", "fine-tuning", BaselineCL, {"method": "finetune"}),
    Method("ewc", "EWC", "EWC", BaselineCL, {"method": "ewc"}),
    Method("online_ewc", "online EWC", "online EWC", BaselineCL, {"method": "online_ewc"}),
    Method("si", "SI", "SI", BaselineCL, {"method": "si"}),
    Method("joint", "joint", "joint training", BaselineCL, {"method": "joint"}),
):
    register(_m)


# the toolkit's own method (a sweep's default), and the three a lab shows by default:
# no protection, a penalty on the weights, the hypernetwork
DEFAULT_METHOD = "hnet"
SHOWCASE = ("finetune", "ewc", DEFAULT_METHOD)


def names() -> tuple[str, ...]:
    """Every registered method's name, in the registry's order."""
    return tuple(REGISTRY)


def is_ours(name: str) -> bool:
    """``name`` is a registered method of the paper's (False for any other name)."""
    return name in REGISTRY and REGISTRY[name].ours


def get_method(name: Any) -> Method:
    """The registry entry of ``name``; a ``ValueError`` listing the methods otherwise."""
    if not isinstance(name, str) or name not in REGISTRY:
        raise ValueError(f"unknown method {name!r}; choose from {', '.join(REGISTRY)}")
    return REGISTRY[name]


def learner_classes() -> dict[str, type[ContinualLearner]]:
    """Learner classes by the ``kind`` their run files record (how a run loads)."""
    return {m.learner.kind: m.learner for m in REGISTRY.values()}


def check_methods(methods: Sequence[str]) -> list[str]:
    """The method names, or a ``ValueError`` naming an unknown or repeated one."""
    every = ", ".join(REGISTRY)
    if isinstance(methods, str) or not isinstance(methods, Sequence):
        raise TypeError(f"methods must be a list of method names (of {every}), "
                        f"got {methods!r:.80}")
    methods = list(methods)
    for m in methods:
        get_method(m)
        if methods.count(m) > 1:
            raise ValueError(f"method {m!r} is named {methods.count(m)} times; name each "
                             "method once")
    if not methods:
        raise ValueError(f"no methods given; choose from {every}")
    return methods


def default_methods(scenario: str) -> list[str]:
    """Every method that runs in ``scenario`` (cl1: all but those that infer the task)."""
    return [m.name for m in REGISTRY.values() if scenario in m.scenarios]


def check_scenario_methods(methods: Sequence[str], scenario: str) -> None:
    """Each method runs in ``scenario``; else a ``ValueError`` naming those that do not."""
    bad = [m for m in methods if scenario not in get_method(m).scenarios]
    if bad:
        where = sorted({s for m in bad for s in get_method(m).scenarios})
        raise ValueError(f"method(s) {', '.join(bad)} are made for what cl2/cl3 hide and do "
                         f"not run in {scenario}; use --scenario {' or '.join(where)}, or leave "
                         "them out")
