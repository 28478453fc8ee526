"""Which task an input belongs to, when the task id is not given (cl2/cl3).

A :class:`hnviz.HyperCL` is composed with one strategy, ``STRATEGIES[config.task_inference]``:
:class:`ByEntropy` (HNET+ENT: the task whose net is most certain) or :class:`ByReplay`
(HNET+TIR: a classifier trained on replayed samples, :mod:`hnviz.core.replay_model`). A
strategy may train a model of its own in lockstep with the hypernetwork (``start``,
``step``, ``finish``), and owns that model's tensors in the learner's state. A new way to
infer the task is a subclass and one entry in ``STRATEGIES``. :class:`TaskInference` is
the learner's side (a mixin of HyperCL): every task net's outputs and entropies, labels
without a task id."""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..core.replay_model import REPLAY_LOGS, ReplayModel
from ..core.tasks import Task


class ByEntropy:
    """HNET+ENT: the task whose net's prediction has the lowest entropy; trains nothing
    of its own. ``outliers``: outlier exposure applies (it calibrates the entropies)."""

    name, logs, outliers = "entropy", (), True
    model: Any = None  # the model it trains besides the hypernetwork

    def __init__(self, config: Any, in_features: int, n_classes: int):
        self.config = config

    @staticmethod
    def count_params(config: Any, in_features: int, n_classes: int, n_tasks: int,
                     templates: bool = False) -> int:
        """Numbers its model adds after ``n_tasks`` tasks, by arithmetic."""
        return 0

    def to(self, device: torch.device) -> None:
        pass

    def start(self, task: Task, gen: torch.Generator) -> Any:
        """Its side of ``task`` at the task's start (None: nothing to train)."""
        return None

    def step(self, progress: Any, idx: torch.Tensor, class_probs: Callable) -> dict[str, float]:
        return {}

    def finish(self, progress: Any) -> None:
        pass

    def infer(self, x: torch.Tensor, entropy: torch.Tensor, n_tasks: int) -> torch.Tensor:
        """Task ids ``(N,)`` of inputs ``x`` ``(N, D)`` given every task net's entropies
        ``(T, N)``."""
        return entropy.argmin(0)

    def weights(self) -> dict[str, torch.Tensor]:
        return {}

    @staticmethod
    def is_weight(name: str) -> bool:
        return False

    def load_weights(self, weights: dict[str, torch.Tensor], n_tasks: int) -> None:
        pass

    def progress_tensors(self, progress: Any) -> dict[str, torch.Tensor]:
        return {}

    def restore(self, task: Task, gen: torch.Generator, tensor: Callable, step: int,
                batch_size: int) -> Any:
        return None


class ByReplay(ByEntropy):
    """HNET+TIR: the replay model's task classifier names the task; the replay model
    (:class:`hnviz.core.replay_model.ReplayModel`) trains one step per hypernetwork step."""

    name, logs, outliers = "replay", REPLAY_LOGS, False

    def __init__(self, config: Any, in_features: int, n_classes: int):
        super().__init__(config, in_features, n_classes)
        self.model = ReplayModel(config, in_features, n_classes)

    count_params = staticmethod(ReplayModel.count_params)

    def to(self, device: torch.device) -> None:
        self.model.to(device)

    def start(self, task: Task, gen: torch.Generator) -> Any:
        return self.model.start(task, gen)

    def step(self, progress: Any, idx: torch.Tensor, class_probs: Callable) -> dict[str, float]:
        return self.model.step(progress, idx, class_probs)

    def finish(self, progress: Any) -> None:
        self.model.finish(progress)

    def infer(self, x: torch.Tensor, entropy: torch.Tensor, n_tasks: int) -> torch.Tensor:
        return self.model.infer(x, n_tasks)

    def weights(self) -> dict[str, torch.Tensor]:
        return self.model.weights()

    @staticmethod
    def is_weight(name: str) -> bool:
        return name.startswith(("rp.hnet.", "rp.encoder.")) or name in (
            "rp.embeddings", "tir.body", "tir.heads")

    def load_weights(self, weights: dict[str, torch.Tensor], n_tasks: int) -> None:
        self.model.load_weights(weights, n_tasks)

    def progress_tensors(self, progress: Any) -> dict[str, torch.Tensor]:
        return self.model.progress_tensors(progress)

    def restore(self, task: Task, gen: torch.Generator, tensor: Callable, step: int,
                batch_size: int) -> Any:
        return self.model.restore(task, gen, tensor, step, batch_size)


STRATEGIES: dict[str, type[ByEntropy]] = {s.name: s for s in (ByEntropy, ByReplay)}


class TaskInference:
    """Task inference for a fitted hypernetwork learner (``embeddings_``, ``target_``,
    ``device_weights``, ``on_device``, ``config.ent_temperature`` and its strategy
    ``inference_``)."""

    @torch.no_grad()
    def task_outputs(self, x: Any, chunk: int = 4096) -> torch.Tensor:
        """Outputs of every learned task's net on ``x``: ``(T, N, out)``, one vmapped pass
        per chunk of ``chunk`` inputs; task t's own head in a multi-head net. Computed on
        the learner's device, returned on the CPU."""
        self.check_fitted()
        x = self.check_x(x)
        weights = self.device_weights(self.embeddings_)  # (T, P), on the device
        outs = torch.cat([self.target_(self.on_device(xc), weights, None).cpu()
                          for xc in x.split(chunk)], dim=1)
        T, heads = self.n_tasks_, self.target_.n_heads
        if heads > 1:  # (T, N, heads, out) -> task t's head
            outs = outs.reshape(T, len(x), heads, -1)[torch.arange(T), :, torch.arange(T)]
        return outs

    def entropies(self, outs: torch.Tensor) -> torch.Tensor:
        """Predictive entropies ``(T, N)`` (nats) of outputs ``(T, N, out)`` at the softmax
        temperature ``config.ent_temperature``."""
        logp = torch.log_softmax(outs / self.config.ent_temperature, dim=-1)
        return -(logp.exp() * logp).sum(-1)

    def _inference(self, x: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inferred task ids ``(N,)``, entropies ``(T, N)`` and the outputs ``(T, N, out)``."""
        outs = self.task_outputs(x)
        entropy = self.entropies(outs)
        t_hat = self.inference_.infer(self.check_x(x), entropy, self.n_tasks_)
        return t_hat, entropy, outs

    def infer_task(self, x: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """The task of each input: by predictive entropy (the task whose net is most
        certain; ``task_inference="entropy"``) or by the replay-trained classifier
        (``"replay"``). Returns the inferred task ids ``(N,)`` and every task net's
        entropy ``(T, N)`` at temperature ``config.ent_temperature``."""
        t_hat, entropy, _ = self._inference(x)
        return t_hat, entropy

    @torch.no_grad()
    def predict_agnostic(self, x: Any, scenario: str) -> torch.Tensor:
        """Labels ``(N,)`` without a task id: infer the task, then use its net; cl3 adds
        the inferred task's class offset (global classes)."""
        t_hat, _, outs = self._inference(x)
        local = outs[t_hat, torch.arange(outs.shape[1])].argmax(-1)
        if scenario != "cl3":
            return local
        offsets = torch.tensor([info.get("class_offset", 0) for info in self.task_info_])
        return local + offsets[t_hat]

    def task_inference_accuracy(self, task: Task) -> float:
        """Percent of ``task``'s test inputs whose task is inferred correctly."""
        return float((self.infer_task(task.x_test)[0] == task.task_id).float().mean() * 100)
