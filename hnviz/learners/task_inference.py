"""Which task an input belongs to, when the task id is not given (cl2/cl3): HNET+ENT
(the task whose net is most certain, by predictive entropy) or HNET+TIR (a classifier
trained on replayed samples, :mod:`hnviz.core.replay_model`). A mixin of :class:`hnviz.HyperCL`."""
from __future__ import annotations

from typing import Any

import torch

from ..core.tasks import Task


class TaskInference:
    """Task inference for a fitted hypernetwork learner (``embeddings_``, ``target_``,
    ``device_weights``, ``on_device``, ``config.ent_temperature`` and, for HNET+TIR,
    ``replay_``)."""

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
        if self.config.task_inference == "replay":
            t_hat = self.replay_.infer(self.check_x(x), self.n_tasks_)
        else:
            t_hat = entropy.argmin(0)
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
