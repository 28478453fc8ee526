"""Speed of one hypernetwork training step as the task sequence grows, against the
authors' library (hypnettorch 0.0.4, the optional ``bench`` extra).

One step = task loss on a batch + beta * output regularizer over all T earlier tasks
(targets fixed at the start of the task) + backward + Adam step. hnviz runs its real
:func:`hnviz.core.train.train_step`; hypnettorch runs ``mnets.MLP`` + ``hnets.ChunkedHMLP`` +
``utils.hnet_regularizer.calc_fix_target_reg(..., targets=...)``. Both start from the same
weights, data and targets (the targets come from a perturbed copy theta* of the weights,
so the regularizer is not zero at step 0) and must agree on the step-0 regularizer
(rtol 1e-4) before anything is timed. Every (library, T) runs in a fresh process with the
same thread count, so that its peak memory (VmHWM) is its own.

``reg_subset=k`` regularizes k random earlier tasks per step instead of all (the paper's
option for long sequences; hypnettorch's ``calc_fix_target_reg(..., batch_size=k)``), in
both libraries; the step-0 check still compares the regularizer over all T tasks.

``python -m hnviz bench [--config pmnist-small|pmnist-100] [--tasks 0,1,10,50,99]
[--reg-subset k] [--device cpu|cuda|...]``; on a GPU each timed step ends with
``torch.cuda.synchronize()``.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import platform
import statistics
import time
from dataclasses import dataclass, replace
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from ..learners.config import HyperCLConfig
from ..core.devices import resolve_device
from ..core.memory import peak_rss_mib
from ..learners.hypercl import HyperCL
from ..core.regularizer import RegTargets
from ..core.tasks import Task
from ..core.train import StepRule, StepState, train_step

TASK_COUNTS = (0, 1, 10, 50, 99)


@dataclass(frozen=True)
class BenchConfig:
    """One benchmark problem: target MLP, chunked hypernetwork, batch and optimiser."""

    in_features: int
    target_hidden: tuple[int, ...]
    n_classes: int
    hnet_hidden: tuple[int, ...]
    chunk_size: int
    chunk_emb_dim: int
    emb_dim: int
    batch_size: int
    beta: float
    lr: float
    steps: int  # timed steps per (library, T)
    warmup: int = 2


CONFIGS = {
    # The PermutedMNIST-sized problem.
    "pmnist-small": BenchConfig(784, (100, 100), 10, (100, 100), 2000, 32, 32, 128, 0.01,
                                1e-3, steps=20),
    # The paper's PermutedMNIST-100 setting (docs/paper.md): 2.04 M target weights.
    "pmnist-100": BenchConfig(1024, (1000, 1000), 10, (200, 250, 350), 7500, 12, 128, 128,
                              0.01, 1e-4, steps=3, warmup=1),
}


def _check_config(name: str) -> BenchConfig:
    if name not in CONFIGS:
        raise ValueError(f"unknown benchmark config {name!r}; choose {', '.join(CONFIGS)}")
    return CONFIGS[name]


def _setup(cfg: BenchConfig, T: int, seed: int = 0, device: str = "cpu") -> dict[str, Any]:
    """The hnviz learner, T + 1 embeddings, theta* (perturbed theta), data: all seeded
    (drawn on the CPU) and on ``device``."""
    hcfg = HyperCLConfig(target_hidden=cfg.target_hidden, target_activation="relu",
                         hnet="chunked", hnet_hidden=cfg.hnet_hidden, hnet_activation="relu",
                         emb_dim=cfg.emb_dim, chunk_size=cfg.chunk_size,
                         chunk_emb_dim=cfg.chunk_emb_dim, beta=cfg.beta, lr=cfg.lr,
                         batch_size=cfg.batch_size, lookahead=False)
    learner = HyperCL(hcfg, random_state=seed, progress=False, device=device)
    learner.build(cfg.in_features, cfg.n_classes)
    dev = learner.device_
    g = torch.Generator().manual_seed(seed + 1)
    embs = torch.randn(T + 1, cfg.emb_dim, generator=g).to(dev)
    theta_star = {n: p.detach() + 0.01 * torch.randn(p.shape, generator=g).to(dev)
                  for n, p in learner.hnet_.named_parameters()}
    x = torch.randn(cfg.batch_size, cfg.in_features, generator=g).to(dev)
    y = torch.randint(cfg.n_classes, (cfg.batch_size,), generator=g).to(dev)
    return {"learner": learner, "embs": embs, "theta_star": theta_star, "x": x, "y": y}


def _hnviz_step(cfg: BenchConfig, T: int, reg_subset: int | None = None,
                device: str = "cpu") -> tuple[Any, float, Any]:
    """hnviz's real training step, its step-0 regularizer, and a function returning the
    last step's gradients by parameter name."""
    s = _setup(cfg, T)
    learner, embs = s["learner"], s["embs"]
    hnet = learner.hnet_
    task = Task(T, "bench", "classification", s["x"], s["y"], s["x"], s["y"], cfg.n_classes,
                T + 1, (cfg.in_features,))
    learner.embeddings_ = embs[:T]
    reg = RegTargets(hnet, embs[:T], theta_star=s["theta_star"]) if T else None
    emb = torch.nn.Parameter(embs[T].clone())
    state = StepState(task, emb, *learner.optimizers(emb), reg, learner.gen_)
    reg0 = float(reg.loss().item()) if T else 0.0
    idx = torch.arange(cfg.batch_size)

    def grads() -> dict[str, torch.Tensor]:
        return {"emb": emb.grad, **{n: p.grad for n, p in hnet.named_parameters()}}

    rule = StepRule(cfg.beta, lookahead=False, reg_subset=reg_subset)
    return (lambda: train_step(hnet, learner.target_, state, idx, rule)), reg0, grads


def _hypnettorch_step(cfg: BenchConfig, T: int, reg_subset: int | None = None,
                      device: str = "cpu") -> tuple[Any, float, Any]:
    """The same step built from hypnettorch 0.0.4, with hnviz's weights copied in."""
    from hypnettorch.hnets import ChunkedHMLP
    from hypnettorch.mnets import MLP
    from hypnettorch.utils.hnet_regularizer import calc_fix_target_reg

    s = _setup(cfg, T)
    ours = s["learner"].hnet_
    mnet = MLP(n_in=cfg.in_features, n_out=cfg.n_classes, hidden_layers=cfg.target_hidden,
               activation_fn=torch.nn.ReLU(), no_weights=True, verbose=False)
    hnet = ChunkedHMLP(mnet.param_shapes, chunk_size=cfg.chunk_size,
                       chunk_emb_size=cfg.chunk_emb_dim, cond_in_size=cfg.emb_dim,
                       layers=cfg.hnet_hidden, activation_fn=torch.nn.ReLU(),
                       num_cond_embs=T + 1, verbose=False).to(s["embs"].device)

    def load(params: dict[str, torch.Tensor]) -> None:
        """hnviz's named parameters into hypnettorch's lists (its input is [chunk emb, e])."""
        linear = [params[n] for n in params if n.startswith("mlp.")]  # w0, b0, w1, b1, ...
        w0 = linear[0]
        linear[0] = torch.cat([w0[:, cfg.emb_dim:], w0[:, :cfg.emb_dim]], dim=1)
        uncond = [*linear, params["chunk_embs"]]
        with torch.no_grad():
            for dst, src in zip(hnet.unconditional_params, uncond, strict=True):
                dst.copy_(src.reshape(dst.shape))
            for dst, src in zip(hnet.conditional_params, s["embs"], strict=True):
                dst.copy_(src)

    load(s["theta_star"])
    with torch.no_grad():
        targets = [[w.detach().clone() for w in hnet.forward(cond_id=t)] for t in range(T)]
    load({n: p.detach() for n, p in ours.named_parameters()})
    opt = torch.optim.Adam([*hnet.unconditional_params, hnet.conditional_params[T]], lr=cfg.lr)
    x, y = s["x"], s["y"]
    reg0 = float(calc_fix_target_reg(hnet, T, targets=targets).item()) if T else 0.0

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(mnet.forward(x, weights=hnet.forward(cond_id=T)), y)
        if T:
            loss = loss + cfg.beta * calc_fix_target_reg(hnet, T, targets=targets,
                                                         batch_size=reg_subset)
        loss.backward()
        opt.step()

    def grads() -> dict[str, torch.Tensor]:
        """The gradients under hnviz's parameter names (first layer's columns swapped back)."""
        names = [n for n, _ in ours.named_parameters() if n.startswith("mlp.")]
        g = [p.grad for p in hnet.unconditional_params]
        g[0] = torch.cat([g[0][:, cfg.chunk_emb_dim:], g[0][:, :cfg.chunk_emb_dim]], dim=1)
        return {"emb": hnet.conditional_params[T].grad, "chunk_embs": g[-1],
                **dict(zip(names, g[:-1], strict=True))}

    return step, reg0, grads


def measure(library: str, config: str, T: int, threads: int, steps: int | None = None,
            reg_subset: int | None = None, device: str = "cpu") -> dict:
    """Median seconds of one step of ``library`` ("hnviz"/"hypnettorch") at T earlier
    tasks (``reg_subset`` of them per step), the step-0 regularizer over all T and the
    process's peak RSS (run in a fresh process)."""
    torch.set_num_threads(threads)
    cfg = _check_config(config)
    cfg = cfg if steps is None else replace(cfg, steps=steps)
    build = _hnviz_step if library == "hnviz" else _hypnettorch_step
    step, reg0, _ = build(cfg, T, reg_subset, device)
    if torch.device(device).type == "cuda":  # time the work, not its queueing
        step = _synchronized(step)
    for _ in range(cfg.warmup):
        step()
    times = []
    for _ in range(cfg.steps):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return {"library": library, "T": T, "median_s": statistics.median(times), "reg0": reg0,
            "peak_mib": peak_rss_mib(), "steps": cfg.steps}


def _synchronized(step: Any) -> Any:
    def run() -> None:
        step()
        torch.cuda.synchronize()
    return run


def _in_fresh_process(*args: Any) -> dict:
    ctx = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(measure, *args).result()


def run_bench(config: str = "pmnist-small", tasks: Sequence[int] = TASK_COUNTS,
              reference: bool = True, threads: int | None = None, steps: int | None = None,
              rtol: float = 1e-4, echo: Any = print, reg_subset: int | None = None,
              device: str = "cpu") -> list[dict]:
    """Measure hnviz (and hypnettorch when ``reference``) at each T; print a table.

    Raises ``AssertionError`` when the two step-0 regularizers differ by more than rtol.
    Returns one row per T: ``T``, ``hnviz_s``, ``hnviz_mib`` and, with the reference,
    ``hypnettorch_s``, ``hypnettorch_mib``, ``ratio`` (hypnettorch / hnviz).
    """
    cfg = _check_config(config)
    if reference:
        try:
            import hypnettorch  # noqa: F401
        except ImportError as e:
            raise ImportError("the reference needs hypnettorch: pip install -e '.[bench]' "
                              "(or run with --no-reference)") from e
    threads = threads or torch.get_num_threads()
    if reg_subset is not None and (isinstance(reg_subset, bool) or not isinstance(reg_subset, int)
                                   or reg_subset < 1):
        raise ValueError(f"reg_subset must be an integer >= 1 (tasks regularized per step), "
                         f"got {reg_subset!r}")
    echo(f"{config}: {cfg}; earlier tasks regularized per step: "
         f"{'all' if reg_subset is None else f'a random {reg_subset}'}")
    device = str(resolve_device(device))  # a device this machine lacks: one line, here
    echo(f"machine: {platform.processor() or platform.machine()}, device {device}, "
         f"{threads} torch threads, "
         f"torch {torch.__version__}; median of {steps or cfg.steps} steps per cell")
    head = f"{'T':>3} | {'hnviz ms':>9} | {'MiB':>6}"
    if reference:
        head += f" | {'hypnettorch ms':>14} | {'MiB':>6} | {'ratio':>6}"
    echo(head)
    rows = []
    for T in tasks:
        ours = _in_fresh_process("hnviz", config, T, threads, steps, reg_subset, device)
        row = {"T": T, "hnviz_s": ours["median_s"], "hnviz_mib": ours["peak_mib"]}
        line = f"{T:>3} | {ours['median_s'] * 1e3:9.1f} | {ours['peak_mib']:6.0f}"
        if reference:
            ref = _in_fresh_process("hypnettorch", config, T, threads, steps, reg_subset, device)
            a, b = ours["reg0"], ref["reg0"]
            if abs(a - b) > rtol * max(abs(a), abs(b)):
                raise AssertionError(f"T={T}: step-0 regularizer hnviz {a!r} != "
                                     f"hypnettorch {b!r} (rtol {rtol})")
            row.update(hypnettorch_s=ref["median_s"], hypnettorch_mib=ref["peak_mib"],
                       ratio=ref["median_s"] / ours["median_s"], reg0=a)
            line += (f" | {ref['median_s'] * 1e3:14.1f} | {ref['peak_mib']:6.0f} | "
                     f"{row['ratio']:5.1f}x")
        echo(line)
        rows.append(row)
    if len(rows) > 1:
        growth = rows[-1]["hnviz_s"] / rows[0]["hnviz_s"]
        echo(f"hnviz step time grows {growth:.1f}x from T={rows[0]['T']} to T={rows[-1]['T']}")
    return rows
