"""The toy regression trained with the authors' library, hypnettorch, and looked at in
hnviz: notebook 02's last section over several seeds (the numbers its text gives).

    python examples/hypnettorch_toy.py --seeds 0 1 2 3 4

Per seed: each task's final MSE, the forgetting (mean over tasks 1-2 of final minus
right-after MSE) and whether the grid cell at each embedding is won by its own task.
Needs hypnettorch (pip install hypnettorch==0.0.4, hnviz's bench extra).
"""
import argparse
import time

import numpy as np
import torch
from hypnettorch.hnets import HMLP
from hypnettorch.mnets import MLP
from hypnettorch.utils import hnet_regularizer as hreg

import hnviz
from hnviz.results.analysis import embedding_landscape


def train(tasks, seed: int, steps: int = 1500, beta: float = 0.5) -> hnviz.ExplorableModel:
    """An HMLP generating a 1-10-10-1 tanh MLP, trained task by task with hypnettorch's
    output regularizer; R recorded after each task."""
    torch.manual_seed(seed)
    mnet = MLP(n_in=1, n_out=1, hidden_layers=(10, 10), activation_fn=torch.nn.Tanh(),
               no_weights=True, verbose=False)
    hnet = HMLP(mnet.param_shapes, cond_in_size=2, layers=(10, 10),
                activation_fn=torch.nn.Sigmoid(), num_cond_embs=len(tasks), verbose=False)
    model = hnviz.from_hypnettorch(hnet, mnet, tasks=tasks)
    for task in tasks:
        t = task.task_id
        targets = hreg.get_current_targets(t, hnet) if t > 0 else None
        opt = torch.optim.Adam([*hnet.unconditional_params, hnet.conditional_params[t]], lr=0.02)
        for _ in range(steps):
            i = torch.randint(len(task.x_train), (100,))
            y = mnet.forward(task.x_train[i], weights=hnet.forward(cond_id=t))
            loss = torch.nn.functional.mse_loss(y, task.y_train[i])
            if t > 0:
                loss = loss + beta * hreg.calc_fix_target_reg(hnet, t, targets=targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.record_scores()
    return model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--resolution", type=int, default=25, help="landscape grid (notebook: 25)")
    args = ap.parse_args()
    tasks = hnviz.toy_regression()
    for seed in args.seeds:
        start = time.perf_counter()
        model = train(tasks, seed, args.steps)
        land = embedding_landscape(model, tasks, "winner", resolution=args.resolution)
        own = [int(land["winner"][abs(land["ys"] - y).argmin(), abs(land["xs"] - x).argmin()])
               for x, y in land["points"]]
        print(f"seed {seed}: final MSE {np.round(model.matrix_[-1], 5)}, forgetting "
              f"{model.summary()['forgetting']:.5f}, own cells won: {own == [0, 1, 2]}, "
              f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
