"""Continual-learning scenarios (van de Ven & Tolias naming; see docs/paper.md).

- ``cl1`` task-incremental: the task id is given at test time (one head per task).
- ``cl2`` domain-incremental: one shared head over each task's local classes; no task id.
- ``cl3`` class-incremental: the classes of all tasks must be told apart; no task id.

Tasks keep their local labels; :attr:`Task.head_size` and :meth:`Task.scenario_labels`
give a shared-head model its output size and labels. Hypernetworks in cl2/cl3 infer the
task by predictive entropy (HNET+ENT, :meth:`hnviz.HyperCL.infer_task`).
"""
from __future__ import annotations

import dataclasses

from ..core.tasks import TaskSequence

SCENARIOS = ("cl1", "cl2", "cl3")


def check_scenario(scenario: str) -> str:
    """Return ``scenario`` or raise a ``ValueError`` naming the choices."""
    if not isinstance(scenario, str) or scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
    return scenario


def apply_scenario(tasks: TaskSequence, scenario: str) -> TaskSequence:
    """The same tasks evaluated (and, for shared heads, trained) under ``scenario``."""
    check_scenario(scenario)
    if tasks.metric != "accuracy" and scenario != "cl1":
        raise ValueError(f"scenario {scenario!r} needs a classification benchmark; "
                         f"{tasks.name} is regression (use cl1)")
    new = [dataclasses.replace(t, scenario=scenario) for t in tasks]
    return TaskSequence(tasks.name, new, {**tasks.spec, "scenario": scenario})
