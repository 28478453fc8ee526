"""Configuration of a hypernetwork continual learner: one frozen dataclass with presets."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from ..core.hnets import HNET_INITS, HNETS
from ..core.outliers import OUTLIERS
from ..core.regularizer import REG_TARGETS
from ..core.targets import ACTIVATIONS, TARGETS
from .task_inference import STRATEGIES
from ..core.validate import check_bool, check_choice, check_int, check_real, check_sizes

EMB_INITS = ("normal", "copy_previous")
TASK_INFERENCE = tuple(STRATEGIES)  # how HyperCL infers the task in cl2/cl3
TIR_CURRENT = ("real", "reconstructed")  # what the task classifier sees of the current task


class ConfigMixin:
    """``replace``/``to_dict``/``from_dict``/``preset`` for frozen config dataclasses;
    subclasses name their preset table in ``_presets()``."""

    @classmethod
    def _presets(cls) -> dict[str, Any]:
        raise NotImplementedError

    def replace(self, **changes: Any) -> Any:
        """A copy with ``changes`` applied (``dataclasses.replace``); unknown names raise."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)}; see {type(self).__name__}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Inverse of :meth:`to_dict`; unknown keys raise a ``ValueError``."""
        if not isinstance(data, dict):
            raise TypeError(f"a saved config must be a JSON object, got {type(data).__name__}")
        unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown config field(s) {sorted(unknown)} in saved config")
        return cls(**data)

    def normalise(self, sizes: tuple[str, ...] = (), choices: tuple[tuple, ...] = (),
                  bools: tuple[str, ...] = (), ints: tuple[str, ...] = (),
                  reals: tuple[str, ...] = (), weights: tuple[str, ...] = (),
                  optional: tuple[str, ...] = ()) -> None:
        """Check fields and store them normalised (tuples, plain int/float) on this frozen
        dataclass: ``sizes`` (layer sizes), ``choices`` ((field, what, allowed), ...),
        ``bools``, ``ints`` (>= 1), ``reals`` (> 0), ``weights`` (>= 0); ``optional``
        ints or reals may be None. ``n_steps`` and ``eval_every`` are always checked."""
        def fix(name: str, value: Any) -> None:
            object.__setattr__(self, name, value)

        for name in sizes:
            fix(name, check_sizes(name, getattr(self, name)))
        for name, what, allowed in choices:
            check_choice(what, getattr(self, name), allowed)
        for name in bools:
            fix(name, check_bool(name, getattr(self, name)))
        fix("n_steps", check_int("n_steps", getattr(self, "n_steps"), 1, MAX_STEPS))
        fix("eval_every", check_int("eval_every", getattr(self, "eval_every"), 0, MAX_STEPS))
        for names, check in ((ints, check_int), (reals, check_real),
                             (weights, lambda n, v: check_real(n, v, allow_lo=True))):
            for name in names:
                value = getattr(self, name)
                if value is not None or name not in optional:
                    fix(name, check(name, value))

    @classmethod
    def preset(cls, name: str, **changes: Any) -> Any:
        """A named preset, optionally with ``changes`` applied."""
        presets = cls._presets()
        if not isinstance(name, str) or name not in presets:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(presets)}")
        return presets[name].replace(**changes)


MAX_STEPS = 1_000_000  # training steps per task a config may ask for (hours per task)

@dataclass(frozen=True)
class HyperCLConfig(ConfigMixin):
    """Everything that defines a hypernetwork continual learner (docs/paper.md, "The loss").

    Target network: ``target`` (one of ``hnviz.core.targets.TARGETS``: "mlp", "lenet",
    "convnet", "zenkenet", "resnet32"; the ResNet keeps batch-norm statistics per task and
    needs cl1) with ``target_hidden`` sizes and
    ``target_activation``; ``multi_head`` gives one output head per task (CL1).
    Hypernetwork: ``hnet`` ("full" or "chunked") with ``hnet_hidden`` sizes; chunked
    hypernetworks produce chunks of ``chunk_size`` weights from a learned chunk embedding
    of ``chunk_emb_dim`` concatenated with the task embedding of ``emb_dim``;
    ``hnet_init`` "xavier" (Xavier-uniform, zero biases) or "pytorch" (``nn.Linear``'s
    default, used by the authors' toy-regression code).
    Regularizer: ``beta`` (0 = fine-tuning), ``reg_targets`` "stored" (a (T-1, P) tensor)
    or "snapshot" (recomputed from a frozen copy of theta*), ``reg_subset`` k earlier
    tasks per step (None = all), ``lookahead`` (use theta + dtheta, docs/paper.md).
    Task inference (cl2/cl3): ``task_inference`` "entropy" (HNET+ENT: the most certain
    task's net; ``ent_temperature`` its softmax temperature; ``outliers`` "blocks" trains
    each task's net towards uncertainty on its own images with shuffled blocks, weight
    ``outlier_weight``, :mod:`hnviz.core.outliers`) or "replay" (HNET+TIR,
    :mod:`hnviz.core.replay_model`: a VAE with ``vae_latent`` latents and encoder layers
    ``vae_hidden`` whose decoder comes from a replay hypernetwork ``rp_hnet_hidden``
    (chunks of ``rp_chunk_size``, embeddings ``rp_emb_dim``, regularized with ``rp_beta``,
    Adam ``rp_lr``), and a task-inference MLP ``tir_hidden`` trained with samples
    replayed from it, Adam ``tir_lr``; ``tir_current`` "real" shows it the current task's
    images as they are, "reconstructed" as the VAE reconstructs them, so that on 28x28
    images "looks real" cannot stand for "the newest task").
    Continual evaluation (:mod:`hnviz.core.stability`): ``eval_every`` k > 0 scores every task
    so far on its first ``eval_samples`` test points every k steps (0: only at task ends).
    """

    target: str = "mlp"
    target_hidden: tuple[int, ...] = (10, 10)
    target_activation: str = "sigmoid"
    multi_head: bool = False
    hnet: str = "full"
    hnet_hidden: tuple[int, ...] = (10, 10)
    hnet_activation: str = "sigmoid"
    hnet_init: str = "xavier"
    emb_dim: int = 2
    chunk_size: int = 1000
    chunk_emb_dim: int = 8
    emb_init: str = "normal"
    beta: float = 0.005
    reg_targets: str = "stored"
    reg_subset: int | None = None
    lookahead: bool = True
    ent_temperature: float = 1.0
    task_inference: str = "entropy"
    outliers: str = "none"
    outlier_weight: float = 1.0
    vae_latent: int = 20
    vae_hidden: tuple[int, ...] = (400, 400)
    rp_hnet_hidden: tuple[int, ...] = (64, 64)
    rp_chunk_size: int = 4000
    rp_emb_dim: int = 16
    rp_beta: float = 0.005
    rp_lr: float = 1e-3
    tir_hidden: tuple[int, ...] = (400, 400)
    tir_lr: float = 1e-3
    tir_current: str = "real"
    lr: float = 1e-2
    emb_lr: float | None = None
    n_steps: int = 4001
    batch_size: int = 32
    eval_every: int = 0
    eval_samples: int = 100

    def __post_init__(self) -> None:
        self.normalise(
            sizes=("target_hidden", "hnet_hidden", "vae_hidden", "rp_hnet_hidden", "tir_hidden"),
            choices=(("target", "target network", TARGETS), ("hnet", "hnet kind", HNETS),
                     ("target_activation", "activation", ACTIVATIONS),
                     ("hnet_activation", "activation", ACTIVATIONS),
                     ("emb_init", "emb_init", EMB_INITS), ("hnet_init", "hnet_init", HNET_INITS),
                     ("reg_targets", "reg_targets", REG_TARGETS),
                     ("task_inference", "task_inference", TASK_INFERENCE),
                     ("outliers", "outliers", OUTLIERS),
                     ("tir_current", "tir_current", TIR_CURRENT)),
            bools=("multi_head", "lookahead"),
            ints=("emb_dim", "chunk_size", "chunk_emb_dim", "batch_size", "vae_latent",
                  "rp_chunk_size", "rp_emb_dim", "eval_samples", "reg_subset"),
            weights=("beta", "outlier_weight", "rp_beta"),
            reals=("lr", "ent_temperature", "rp_lr", "tir_lr", "emb_lr"),
            optional=("reg_subset", "emb_lr"))

    def check_task(self, task: Any) -> None:
        """HNET+TIR and outlier exposure need classification tasks (outliers: of images
        at least 2x2); a ``ValueError`` naming the setting otherwise."""
        if (self.task_inference == "replay" or self.outliers != "none") \
                and task.kind != "classification":
            what = "task_inference='replay'" if self.task_inference == "replay" else \
                f"outliers={self.outliers!r}"
            raise ValueError(f"{what} needs classification tasks, got {task.kind} task "
                             f"{task.name!r}; use task_inference='entropy', outliers='none'")
        if self.outliers != "none" and (len(task.in_shape) != 3 or min(task.in_shape[1:]) < 2):
            raise ValueError(f"outliers={self.outliers!r} needs images (C, H, W) of at least "
                             f"2x2, got in_shape {tuple(task.in_shape)}; use outliers='none'")

    @classmethod
    def _presets(cls) -> dict[str, "HyperCLConfig"]:
        return PRESETS


# CPU-sized for the 8x8 scikit-learn digits (64 inputs): target 64-100-100-10, chunked hnet.
_DIGITS = HyperCLConfig(
    target_hidden=(100, 100), target_activation="relu",
    hnet="chunked", hnet_hidden=(64, 64), hnet_activation="relu",
    emb_dim=16, chunk_size=2000, chunk_emb_dim=16,
    beta=0.05, lr=1e-3, n_steps=1000, batch_size=64)
# 100 tasks need a wider hypernetwork (docs/results.md, "Speed").
_WIDE_HNET = _DIGITS.replace(hnet_hidden=(200, 200), emb_dim=32, chunk_emb_dim=32,
                             beta=0.3, n_steps=300)
# PermutedDigits-100 (docs/results.md, "Speed"): a 64-64-10 target (4,810 weights, 3 chunks)
# keeps 100 tasks better than 64-100-100-10, with 3 chunks per task instead of 9 to
# regularize; 150 steps per task suffice.
_DIGITS_100 = _WIDE_HNET.replace(target_hidden=(64,), n_steps=150)
# The compressive regime (docs/results.md, "Compression"): a wide target (64-2000-10)
# from a hypernetwork with fewer weights than it (ratio 0.28 at 10 tasks, 0.30 at 100).
# Its first hidden layer is where the task embedding enters: that width, not the total
# size, lets new tasks be learned while the regularizer pins theta. Chunks of 250 from a
# last hidden layer of 64 (each chunk a mix of 65 shared rows, not 33) and 2000 steps
# per task bring it within 3.4 points of the non-compressive preset on 10 tasks (2.4 on
# the seeds it was chosen on); 4 random earlier tasks regularized per step keep a
# step's cost flat over 100 tasks. It forgets more and more beyond 10 tasks.
_DIGITS_COMPRESSIVE = _DIGITS.replace(target_hidden=(2000,), hnet_hidden=(192, 64),
                                      emb_dim=32, chunk_size=250, chunk_emb_dim=8, lr=5e-4,
                                      n_steps=2000, reg_subset=4)
# Target 400-400 as the paper's SplitMNIST net: wider nets also make task inference by
# entropy work far better on SplitDigits cl3, and outlier exposure (shuffled blocks, used
# in cl2/cl3 by entropy) lifts it further (docs/results.md, "Class-incremental learning").
_SPLIT_DIGITS = _DIGITS.replace(target_hidden=(400, 400), multi_head=True, n_steps=1000,
                                outliers="blocks")
# The paper's MNIST settings (docs/paper.md); use padding=True on the PermutedMNIST data.
_PAPER_PERMUTED = HyperCLConfig(
    target_hidden=(1000, 1000), target_activation="relu", hnet="chunked",
    lr=1e-4, n_steps=5000, batch_size=128)

PRESETS: dict[str, HyperCLConfig] = {
    # The authors' toy-regression settings, with their toy code's hnet init (hypercl's
    # init_params = PyTorch's nn.Linear default; see docs/results.md, seed sweep).
    "toy_regression": HyperCLConfig(hnet_init="pytorch"),
    # The toy learned in 1500 steps per task (3 s for all three on 2 cores) for notebooks,
    # labs and the docs: a tanh target (sigmoid units sit on the cubic's straight-line-fit
    # plateau, MSE ~0.03, for 1000s of steps), the whole training set as one batch, Adam
    # 2e-2 and beta 0.1 (the regularizer gets fewer steps to pull the old tasks back).
    # How often it fits all three tasks: docs/results.md, "The quick toy".
    "toy_regression_quick": HyperCLConfig(hnet_init="pytorch", target_activation="tanh",
                                          batch_size=100, lr=2e-2, beta=0.1, n_steps=1500),
    "permuted_digits": _DIGITS,
    "permuted_digits_100": _DIGITS_100,
    "permuted_digits_compressive": _DIGITS_COMPRESSIVE,
    "split_digits": _SPLIT_DIGITS,
    "permuted_mnist": _PAPER_PERMUTED.replace(
        hnet_hidden=(25, 25), hnet_activation="elu", emb_dim=24, chunk_size=78000,
        chunk_emb_dim=8, beta=0.1),
    "permuted_mnist_100": _PAPER_PERMUTED.replace(
        hnet_hidden=(200, 250, 350), hnet_activation="relu", emb_dim=128, chunk_size=7500,
        chunk_emb_dim=12, beta=0.01),
    "split_mnist": _SPLIT_DIGITS.replace(
        hnet_hidden=(10, 10), emb_dim=96, chunk_size=42000, chunk_emb_dim=96, beta=0.01,
        n_steps=2000, batch_size=128),
    # CPU-sized ("fast") presets for 28x28 images: minutes, not hours, on 2 cores.
    "permuted_mnist_fast": _DIGITS.replace(batch_size=128),
    "permuted_mnist_100_fast": _WIDE_HNET.replace(n_steps=500, batch_size=128),
    # 28x28 class-incremental (docs/results.md, "Class-incremental learning"): at lr 1e-3
    # the hypernetwork's shared-head nets collapsed to the newest task; 2.5e-4 trains them.
    # HNET+TIR's replay side needs a larger latent code and replay hypernetwork for 784
    # pixels, and its classifier the current task as reconstructed (on the 8x8 digits real
    # images are better: their reconstructions are blurred).
    "split_mnist_fast": _SPLIT_DIGITS.replace(n_steps=500, batch_size=128, lr=2.5e-4,
                                              vae_latent=50, rp_hnet_hidden=(100, 100),
                                              tir_current="reconstructed"),
}
# Fashion-MNIST uses the MNIST settings.
PRESETS.update({name.replace("mnist", "fashion_mnist"): cfg for name, cfg in list(PRESETS.items())
                if "mnist" in name and name != "permuted_mnist_100"})
# The compressive regime on 28x28 images (examples/compression_fashion_400.yaml; its
# results: docs/results.md, "Compression"): target 784-400-400-10 from fewer hypernetwork
# weights than it; chunks of 2000, lr 0.0012 (about 0.048 / h2).
PRESETS["permuted_fashion_mnist_compressive"] = PRESETS["permuted_fashion_mnist_fast"].replace(
    target_hidden=(400, 400), hnet_hidden=(256, 40), emb_dim=32, chunk_size=2000,
    chunk_emb_dim=8, lr=0.0012)
# The offline transfer benchmark (fashion_transfer; docs/results.md, "Transfer"): a small
# conv target (two 3x3 convolutions, a dense layer of 100, a 5-way head per task) from a
# chunked hypernetwork, 1000 steps of 32 images per task (an epoch of the first task,
# 320 of a later one with 20 images per class). Adam 3e-4: at 1e-3, 3 of the 18 task
# trainings of seeds 0-2 (in the sequence or alone) stayed at chance (20 %); at 3e-4
# the first two tasks and a task alone learned on seeds 0-5.
PRESETS["fashion_transfer"] = HyperCLConfig(
    target="convnet", target_hidden=(100,), target_activation="relu", multi_head=True,
    hnet="chunked", hnet_hidden=(100, 100), hnet_activation="relu", emb_dim=32,
    chunk_size=4000, chunk_emb_dim=16, beta=0.01, lr=3e-4, n_steps=1000, batch_size=32)
PRESETS["fashion_transfer_fast"] = PRESETS["fashion_transfer"].replace(n_steps=200)
# Split CIFAR-10/100 and SplitCIFAR-10 with the paper's ZenkeNet (4 conv + 2 dense layers,
# 1.28 M weights with six heads): chunked hnet [100, 150, 200], chunks of 5,500, task and
# chunk embeddings of 48 and 80, beta 0.01, Adam 1e-4, batches of 32 (the paper trains
# 200 epochs with data augmentation; 20,000 steps here is 13 epochs of CIFAR-10 and 128
# of a 5,000-image CIFAR-100 task, no augmentation). A GPU's job; "_fast" is a CPU smoke
# run of a few steps on data subsets, not a result (docs/results.md, "Split CIFAR").
_CIFAR_ZENKE = HyperCLConfig(
    target="zenkenet", target_hidden=(512,), target_activation="relu", multi_head=True,
    hnet="chunked", hnet_hidden=(100, 150, 200), hnet_activation="relu", emb_dim=48,
    chunk_size=5500, chunk_emb_dim=80, beta=0.01, lr=1e-4, n_steps=20000, batch_size=32)
# The paper's ResNet-32 (468,540 weights with six heads; batch-norm statistics per task)
# from a hypernetwork without hidden layers: task and chunk embeddings of 32 map linearly
# to chunks of 7,000 weights (ratio 0.976 with six tasks); beta 0.05, Adam 1e-3.
_CIFAR_RESNET = _CIFAR_ZENKE.replace(target="resnet32", target_hidden=(), hnet_hidden=(),
                                     emb_dim=32, chunk_size=7000, chunk_emb_dim=32,
                                     beta=0.05, lr=1e-3)
for _name in ("split_cifar10", "split_cifar10_100"):
    for _suffix, _cfg in (("", _CIFAR_ZENKE), ("_resnet", _CIFAR_RESNET)):
        PRESETS[_name + _suffix] = _cfg
        PRESETS[f"{_name}{_suffix}_fast"] = _cfg.replace(n_steps=20, batch_size=16)
# 100 tasks on real 28x28 images (docs/results.md, "Long sequences on real images"): target
# 784-100-100-10, a wide hypernetwork [256, 128] at learning rate 0.032 / h2 as in the
# compression sweep; 16 random earlier tasks regularized per step (all of them cost
# twice the time by task 100 for the same accuracy at 30 tasks); beta 0.2. Chunks of 8000
# (12 per net, the paper's 7500): the output layer's columns span the space every chunk of
# every task lies in, and 2000-weight chunks left too little room (81.2 % at 30 tasks,
# 84.5 % with 8000, seed 0).
PRESETS["permuted_fashion_mnist_100"] = PRESETS["permuted_fashion_mnist_fast"].replace(
    target_hidden=(100, 100), hnet_hidden=(256, 128), emb_dim=32, chunk_size=8000,
    chunk_emb_dim=8, beta=0.2, lr=2.5e-4, n_steps=1000, reg_subset=16)
