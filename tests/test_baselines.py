"""Baselines: Fisher, online Fisher, SI path integral and penalties against hand formulas."""
import json

import numpy as np
import pytest
import torch

import hnviz
from hnviz.learners.baselines import BASELINE_PRESETS, METHODS, BaselineCL, BaselineConfig
from hnviz.core.penalties import fisher_diagonal, quadratic_penalty
from hnviz.core.targets import build_target
from hnviz.core.train import Callback


def toy_cfg(method, **changes):
    return BaselineConfig.preset("toy_regression", method=method, n_steps=25, **changes)


# ------------------------------------------------------------------ Fisher (EWC)
@pytest.mark.parametrize("kind", ["mlp", "lenet"])
def test_head_indices_are_the_weights_a_head_depends_on(kind):
    target = build_target(kind, 784, 3, (5,), "tanh", n_heads=4)
    theta = torch.randn(target.num_params, requires_grad=True)
    for head in (0, 2, 3):
        (g,) = torch.autograd.grad(target(torch.randn(6, 784), theta, head).sum(), theta)
        used = torch.zeros(target.num_params, dtype=torch.bool)
        used[target.head_indices(head)] = True
        assert not g[~used].any() and used.sum() == target.num_params - 3 * (3 * 5 + 3)
        assert (g[used] != 0).float().mean() > 0.5  # ReLU-free net: most entries move


def test_ewc_keeps_one_fisher_and_anchor_per_task(toy):
    l = BaselineCL(toy_cfg("ewc"), progress=False).fit(toy)
    assert l.importance_.shape == l.anchors_.shape == (3, l.target_.num_params)
    for t in range(3):  # fisher_samples >= 100 training points: every point is used
        ref = fisher_diagonal(l.target_, l.anchors_[t], toy[t].x_train, kind="regression")
        torch.testing.assert_close(l.importance_[t], ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(l.anchors_[-1], l.theta_.detach())


def test_online_ewc_running_fisher_is_gamma_combination(toy):
    tasks = toy.tasks[:2]  # up to task 1 both learners see the same penalty: same trajectory
    ewc = BaselineCL(toy_cfg("ewc"), progress=False).fit(tasks)
    online = BaselineCL(toy_cfg("online_ewc", online_gamma=0.7), progress=False).fit(tasks)
    assert online.importance_.shape == (1, ewc.target_.num_params)
    torch.testing.assert_close(online.importance_[0],
                               0.7 * ewc.importance_[0] + ewc.importance_[1], rtol=1e-5, atol=1e-7)
    torch.testing.assert_close(online.anchors_[0], ewc.anchors_[1])


# ------------------------------------------------------------------ SI
def test_si_learner_uses_task_gradient_and_actual_steps(toy):
    class Record(Callback):
        def __init__(self):
            self.thetas, self.grads = {}, {}

        def on_task_start(self, learner, task):
            self.thetas[task.task_id] = [learner.theta_.detach().clone()]
            self.grads[task.task_id] = []

        def on_step(self, learner, task_id, step, logs):
            self.thetas[task_id].append(learner.theta_.detach().clone())
            self.grads[task_id].append(learner.theta_.grad.clone())  # task + penalty

    rec, c, xi = Record(), 0.5, 0.1
    l = BaselineCL(toy_cfg("si", si_c=c, si_xi=xi), progress=False, callbacks=[rec])
    l.partial_fit(toy[0])
    omega0, anchor0 = l.importance_[0].clone(), l.anchors_[0].clone()
    l.partial_fit(toy[1])
    expected = []
    for t, (prev_omega, prev_anchor) in enumerate([(None, None), (omega0, anchor0)]):
        th, w = torch.stack(rec.thetas[t]), torch.zeros_like(omega0)
        for k, g in enumerate(rec.grads[t]):
            if prev_omega is not None:  # remove the penalty's gradient 2c Omega (theta - theta*)
                g = g - 2 * c * prev_omega * (th[k] - prev_anchor)
            w -= g * (th[k + 1] - th[k])
        expected.append(w / ((th[-1] - th[0]) ** 2 + xi))
    torch.testing.assert_close(omega0, expected[0], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(l.importance_[0], omega0 + expected[1], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(l.anchors_[0], l.theta_.detach())


# ------------------------------------------------------------------ penalties
@pytest.mark.parametrize("method", ["ewc", "online_ewc", "si"])
def test_penalty_zero_at_anchor_and_hand_formula(toy, method):
    cfg = toy_cfg(method, ewc_lambda=3.0, si_c=0.7)
    l = BaselineCL(cfg, progress=False).fit(toy.tasks[:2])
    F, A = l.importance_.numpy(), l.anchors_.numpy()
    theta = l.theta_.detach() + 0.1 * torch.randn(l.target_.num_params)
    strength = 0.7 if method == "si" else 3.0 / 2
    hand = strength * sum(np.sum(F[k] * (theta.numpy() - A[k]) ** 2) for k in range(len(F)))
    assert l.penalty(theta).item() == pytest.approx(hand, rel=1e-5)
    assert quadratic_penalty(l.anchors_[-1], l.importance_[-1:], l.anchors_[-1:], 2.0).item() == 0
    if method != "ewc":  # one anchor: zero penalty there
        assert l.penalty(l.anchors_[0]).item() == 0
    assert l.history_[0]["reg_loss"].max() == 0 and l.history_[1]["reg_loss"].max() > 0


def test_finetune_and_joint_have_no_penalty(toy):
    for method in ("finetune", "joint"):
        l = BaselineCL(toy_cfg(method), progress=False).fit(toy.tasks[:2])
        assert l.penalty() is None and len(l.importance_) == 0
        assert l.history_[1]["reg_loss"].max() == 0


def test_joint_multi_head_loss_uses_each_samples_head():
    tasks = hnviz.split_digits()
    l = BaselineCL(BaselineConfig.preset("split_digits", method="joint", n_steps=3),
                   progress=False).fit(tasks.tasks[:3])
    x, y, heads = l._train_data(tasks[3])
    assert sorted(heads.unique().tolist()) == [0, 1, 2, 3] and len(x) == sum(
        len(t.x_train) for t in tasks.tasks[:4])
    idx = torch.randperm(len(x))[:40]
    loss = l._task_loss("classification", x[idx], y[idx], heads[idx])
    ref = torch.stack([torch.nn.functional.cross_entropy(
        l.target_(x[i:i + 1], l.theta_, int(heads[i])), y[i:i + 1]) for i in idx]).mean()
    torch.testing.assert_close(loss, ref)


# ------------------------------------------------------------------ short runs
@pytest.fixture(scope="module")
def digit_runs():
    tasks = hnviz.permuted_digits(3)
    return {m: BaselineCL(BaselineConfig.preset("permuted_digits", method=m, n_steps=300),
                          progress=False).fit(tasks) for m in METHODS if m != "dgr"}  # DGR: test_dgr


def test_short_permuted_digits_runs(digit_runs):
    for method, l in digit_runs.items():
        R = l.matrix_
        assert R.shape == (3, 3) and np.isfinite(R[np.tril_indices(3)]).all(), method
        assert np.isnan(R[0, 1]) and l.summary()["metric"] == "accuracy"
        assert R[0, 0] > 80, method
    task0 = {m: l.matrix_[-1, 0] for m, l in digit_runs.items()}
    assert task0["ewc"] > task0["finetune"] + 10 and task0["online_ewc"] > task0["finetune"] + 10
    assert task0["joint"] > task0["finetune"] + 10
    for m in ("ewc", "online_ewc", "si"):  # penalty active after the first step of a task
        assert digit_runs[m].history_[2]["reg_loss"][1:].min() > 0, m


# ------------------------------------------------------------------ API, runs, errors
def test_api_and_seeding(toy):
    a = BaselineCL(toy_cfg("si"), random_state=4, progress=False).fit(toy)
    b = BaselineCL(toy_cfg("si"), random_state=4, progress=False).partial_fit(toy[0])
    b.partial_fit(toy[1]).partial_fit(toy[2])
    assert torch.equal(a.theta_, b.theta_) and a.theta_.shape == (a.target_.num_params,)
    np.testing.assert_array_equal(a.matrix_, b.matrix_)
    assert a.predict(toy[0].x_test, 0).shape == (50, 1) and "BaselineCL(tasks=3" in repr(a)
    assert a.history_[2]["task_loss"].shape == (25,) and a.score(toy[2]) == a.matrix_[-1, 2]
    torch.manual_seed(4)  # theta_ starts at the template's default init under the seed
    fresh = build_target("mlp", 1, 1, (10, 10), "sigmoid")
    c = BaselineCL(toy_cfg("finetune"), random_state=4, progress=False)
    c.build(1, 1, 1, (1,))
    assert torch.equal(c.theta_.detach(), fresh.flatten_module())
    with pytest.raises(ValueError, match="expects task 0 next"):
        BaselineCL(toy_cfg("ewc"), progress=False).partial_fit(toy[1])
    assert BaselineCL("permuted_digits").config == BASELINE_PRESETS["permuted_digits"]


OWN_LR = ("permuted_fashion_mnist_100", "split_mnist_fast", "split_fashion_mnist_fast")


def test_presets_copy_hypercl_presets():
    for name, cfg in BASELINE_PRESETS.items():
        h = hnviz.PRESETS[name]
        for field in ("target", "target_hidden", "target_activation", "multi_head", "lr",
                      "n_steps", "batch_size"):
            if field == "lr" and name in OWN_LR:
                continue  # the HNET's rate is set for the hypernetwork (checked below)
            assert getattr(cfg, field) == getattr(h, field), (name, field)
    for name in OWN_LR:
        assert BASELINE_PRESETS[name].lr == 1e-3 and hnviz.PRESETS[name].lr < 1e-3, name
    assert hnviz.PRESETS["permuted_fashion_mnist_100"].lr == 0.032 / 128
    cfg = BaselineConfig.preset("split_digits", method="si", si_c=1.0)
    assert BaselineConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_save_load_identical_predictions(digit_runs, tmp_path):
    tasks = hnviz.permuted_digits(3)
    for method in ("ewc", "si"):
        l = digit_runs[method]
        hnviz.save_run(l, tmp_path / method, benchmark=tasks.spec)
        run = hnviz.load_run(tmp_path / method)
        assert isinstance(run.learner, BaselineCL) and run.learner.config == l.config
        assert json.loads((tmp_path / method / "run.json").read_text())["learner"] == "baseline"
        for t in range(3):
            assert torch.equal(run.learner.predict_output(tasks[t].x_test, t),
                               l.predict_output(tasks[t].x_test, t))
        assert torch.equal(run.learner.importance_, l.importance_)
        assert torch.equal(run.learner.anchors_, l.anchors_)
        np.testing.assert_array_equal(run.learner.matrix_, l.matrix_)


def test_run_json_learner_key(tiny_toy_learner, tmp_path):
    hnviz.save_run(tiny_toy_learner, tmp_path)
    info = json.loads((tmp_path / "run.json").read_text())
    assert info.pop("learner") == "hypercl"
    (tmp_path / "run.json").write_text(json.dumps(info))  # runs saved before the key existed
    assert isinstance(hnviz.load_run(tmp_path).learner, hnviz.HyperCL)
    (tmp_path / "run.json").write_text(json.dumps({**info, "learner": "svm"}))
    with pytest.raises(ValueError, match="names learner 'svm'; this hnviz reads hypercl, hnet_r, dgr, baseline"):
        hnviz.load_run(tmp_path)


@pytest.mark.parametrize("changes,match", [
    ({"method": "lwf"}, "unknown method 'lwf'; choose one of finetune, ewc, online_ewc, si, joint"),
    ({"ewc_lambda": -1.0}, "ewc_lambda must be a finite number >= 0, got -1.0"),
    ({"si_c": -0.5}, "si_c must be a finite number >= 0"),
    ({"online_gamma": 1.5}, r"online_gamma must be in \[0, 1\], got 1.5"),
    ({"fisher_samples": 0}, "fisher_samples must be an integer >= 1, got 0"),
])
def test_bad_config(changes, match):
    with pytest.raises(ValueError, match=match):
        BaselineConfig(**changes)


def test_bad_preset_field_and_config_type():
    with pytest.raises(ValueError, match="unknown preset 'mnist'"):
        BaselineConfig.preset("mnist")
    with pytest.raises(ValueError, match="unknown config field"):
        BaselineConfig().replace(lambda_=1.0)
    with pytest.raises(TypeError, match="BaselineConfig or a preset name"):
        BaselineCL(hnviz.HyperCLConfig())
