"""Hypernetworks trained with the authors' library, hypnettorch, in hnviz's explorers.

:func:`from_hypnettorch` adapts a hypernetwork (``HMLP``, ``ChunkedHMLP``: anything whose
``forward(cond_input=emb, ret_format="flattened")`` maps task embeddings ``(B, E)`` to
weights ``(B, P)``) and its main network (an ``MLP`` built with ``no_weights=True``:
``forward(x, weights=[...])`` with the tensors of ``param_shapes``) to the hypernetwork
protocol (:mod:`hnviz.learners.protocol`). hypnettorch itself is not imported: the
adapter calls the two nets' own ``forward``.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

import torch
from torch.func import vmap

from ..core.tasks import Task, task_list
from ..core.validate import check_int
from .protocol import ExplorableModel, as_embeddings

__all__ = ["HypnettorchModel", "from_hypnettorch"]


def _shapes(net: Any, attr: str, role: str) -> list[list[int]]:
    shapes = getattr(net, attr, None)
    if shapes is None:
        raise TypeError(f"{role} {type(net).__name__} has no {attr}; from_hypnettorch takes "
                        "a hypnettorch hypernetwork (HMLP, ChunkedHMLP) and main network (MLP)")
    return [list(map(int, s)) for s in shapes]


@contextmanager
def evaluating(net: Any) -> Iterator[None]:
    """``net`` in eval mode for the block, its own mode after (the explorers look at a
    trained net: no dropout noise, batch norm's running statistics)."""
    was = getattr(net, "training", None)
    if was:
        net.eval()
    try:
        yield
    finally:
        if was:
            net.train()


class HypnettorchModel:
    """The protocol's four members for a hypnettorch ``hnet`` and ``mnet``.

    ``embeddings``: the task embeddings, a tensor ``(T, E)`` or a list of ``(E,)``
    tensors (default: ``hnet.conditional_params``, the hypernetwork's own); read each time,
    so a model adapted before training shows the embeddings as they are now.
    ``head_size``: with a multi-head main net (hypnettorch's convention: task t owns the
    outputs ``t * head_size`` to ``(t + 1) * head_size``), the outputs per task; None: all.
    """

    def __init__(self, hnet: Any, mnet: Any, embeddings: Any, tasks: Sequence[Task],
                 head_size: int | None = None):
        self.hnet, self.mnet, self.tasks_ = hnet, mnet, task_list(tasks)
        self.shapes = _shapes(mnet, "param_shapes", "main network")
        if _shapes(hnet, "target_shapes", "hypernetwork") != self.shapes:
            raise ValueError("the hypernetwork's target_shapes are not the main network's "
                             "param_shapes: build it as HMLP(mnet.param_shapes, ...)")
        self.sizes = [math.prod(s) for s in self.shapes]
        if embeddings is None:
            embeddings = getattr(hnet, "conditional_params", None)
            if not embeddings:
                raise ValueError("the hypernetwork keeps no task embeddings "
                                 "(no_cond_weights=True): pass embeddings=(T, E)")
        self.embeddings = embeddings
        self.head_size = None if head_size is None else check_int("head_size", head_size, 1)
        emb = self.embeddings_
        try:
            with torch.no_grad():
                self.generate_weights(emb[:1])
        except Exception as e:  # noqa: BLE001 - said in one line with the fix
            raise ValueError(f"hnet.forward(cond_input=embeddings) failed for embeddings "
                             f"{tuple(emb.shape)} ({type(e).__name__}{': ' if str(e) else ''}"
                             f"{e}): E = {emb.shape[1]} must be the hypernetwork's "
                             "cond_in_size, and it must keep its own other weights") from None

    @property
    def embeddings_(self) -> torch.Tensor:
        """The task embeddings now ``(T, E)``, in the hypernetwork's dtype and on its device."""
        emb = self.embeddings
        emb = emb.detach() if torch.is_tensor(emb) else as_embeddings(emb, "embeddings")
        return emb.to(*self._placement())

    def _placement(self) -> tuple[torch.device, torch.dtype]:
        """Where the hypernetwork is now, and its dtype (read each call: a net moved or
        cast after it was adapted is followed)."""
        first = next(iter(self.hnet.parameters()), None)
        return (first.device, first.dtype) if first is not None else \
            (torch.device("cpu"), torch.float32)

    def generate_weights(self, emb: torch.Tensor) -> torch.Tensor:
        """``hnet.forward(cond_input=emb)`` flattened: ``(B, E)`` -> ``(B, P)`` (in eval
        mode: no dropout, batch norm's running statistics)."""
        with evaluating(self.hnet):
            return self.hnet.forward(cond_input=emb.to(*self._placement()),
                                     ret_format="flattened")

    def main_output(self, x: torch.Tensor, flat: torch.Tensor) -> torch.Tensor:
        """``mnet.forward`` of one net: x ``(N, D)``, flat weights ``(P,)`` -> ``(N, out)``."""
        weights = [w.reshape(s) for w, s in zip(flat.split(self.sizes), self.shapes)]
        out = self.mnet.forward(x, weights=weights)
        return out[0] if isinstance(out, tuple) else out  # MLP with out_fn: (y, h_y)

    def net_output(self, x: torch.Tensor, weights: torch.Tensor, task_id: int) -> torch.Tensor:
        """Outputs ``(B, N, out)`` of the B main nets with ``weights`` ``(B, P)``, in one
        vmapped call (task ``task_id``'s head with ``head_size``)."""
        x = x.to(weights.device, weights.dtype).reshape(len(x), -1)
        with evaluating(self.mnet):
            out = vmap(lambda w: self.main_output(x, w))(weights)
        if self.head_size is not None:
            h = self.head_size
            out = out[..., task_id * h:(task_id + 1) * h]
        return out


def from_hypnettorch(hnet: Any, mnet: Any, embeddings: Any = None,
                     tasks: Sequence[Task] | None = None, *, head_size: int | None = None,
                     matrix: Any = None) -> ExplorableModel:
    """A hypnettorch hypernetwork ``hnet`` and main network ``mnet`` as a model hnviz's
    explorers open (:class:`~hnviz.learners.protocol.ExplorableModel`).

    ``embeddings`` (T, E) or T tensors (E,) (default: ``hnet.conditional_params``);
    ``tasks``: the T hnviz tasks (test data and metric); ``head_size``: outputs per task
    of a multi-head main net; ``matrix``: R if recorded (else call ``record_scores()``
    after each task while training). Example::

        mnet = MLP(n_in=1, n_out=1, hidden_layers=(10, 10), no_weights=True)
        hnet = HMLP(mnet.param_shapes, cond_in_size=2, num_cond_embs=3)
        ...  # train with hypnettorch
        model = hnviz.from_hypnettorch(hnet, mnet, tasks=hnviz.toy_regression())
        EmbeddingExplorer(model)
    """
    if tasks is None:
        raise TypeError("from_hypnettorch needs tasks=...: the hnviz tasks the model learned "
                        "(their test data and metric), e.g. tasks=hnviz.toy_regression()")
    return ExplorableModel(HypnettorchModel(hnet, mnet, embeddings, tasks, head_size), matrix)
