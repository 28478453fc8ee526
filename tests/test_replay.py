"""HNET+TIR: the replay hypernetwork's regularizer against the per-task loop, task
inference learned from replay, replay quality, files, and exact resume."""
import pytest
import torch

import hnviz
from hnviz.experiments.compare import make_learner
from hnviz.core.regularizer import RegTargets
from hnviz.core.replay_model import ReplayModel
from hnviz.learners.replay_judge import replay_quality, train_judge
from hnviz.data.scenarios import apply_scenario
from test_regularizer import naive_regularizer

SMALL = dict(n_steps=200, vae_hidden=(100,), rp_hnet_hidden=(32, 32), rp_chunk_size=500,
             rp_beta=0.05, tir_hidden=(100,), target_hidden=(100,))


@pytest.fixture(scope="module")
def cl3_tasks():
    return apply_scenario(hnviz.split_digits(), "cl3")


@pytest.fixture(scope="module")
def tir(cl3_tasks):
    return make_learner("hnet_tir", "split_digits", "cl3", 0, False, **SMALL).fit(cl3_tasks)


@pytest.mark.parametrize("gram", [False, True])
def test_replay_regularizer_equals_the_per_task_loop(gram):
    """The replay hypernetwork goes through the same RegTargets as the main one: value
    and gradient against one forward per task, float64, at theta + dtheta."""
    cfg = hnviz.HyperCLConfig.preset("split_digits", **SMALL)
    model = ReplayModel(cfg, 64, 2)
    hnet = model.hnet.double()
    embs = torch.randn(4, cfg.rp_emb_dim, dtype=torch.float64)
    star = {n: p.detach() + 0.05 * torch.randn_like(p) for n, p in hnet.named_parameters()}
    reg = RegTargets(hnet, embs, theta_star=star)
    params = {n: p + 0.01 * torch.randn_like(p) for n, p in hnet.named_parameters()}
    with torch.no_grad():
        targets = torch.func.functional_call(hnet, star, (embs,))
    fast = reg.loss(None, params, "gram" if gram else "direct")  # the cheaper one and the other
    slow = naive_regularizer(hnet, embs, targets, params)
    assert slow.item() > 1e-3
    torch.testing.assert_close(fast, slow, rtol=1e-5, atol=0)
    for a, b in zip(torch.autograd.grad(fast, list(hnet.parameters())),
                    torch.autograd.grad(slow, list(hnet.parameters()))):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-10)


def test_tir_infers_tasks_from_replay(tir, cl3_tasks):
    s = tir.summary()
    # measured (seed 0, 200 steps): 87.7 % final
    assert s["task_inference"]["average_final"] >= 75.0, s["task_inference"]
    assert tir.replay_.embeddings.shape == (5, tir.config.rp_emb_dim)
    assert tir.replay_.tir_heads.shape == (5 * 2, 101)  # a row per task and class
    assert set(tir.history_[2]) >= {"rp_loss", "rp_reg", "tir_loss"}
    assert tir.history_[0]["tir_loss"].max() == 0.0  # nothing to tell apart at task 1
    assert tir.history_[3]["rp_reg"][-1] > 0  # the replay hypernetwork is regularized
    x = cl3_tasks[2].x_test
    t_hat, _ = tir.infer_task(x)
    probs = torch.softmax(tir.replay_.tir_logits(x), -1).detach()  # (N, 10) task x class
    torch.testing.assert_close(t_hat, probs.reshape(-1, 5, 2).sum(-1).argmax(-1))


def test_replay_quality_is_judged_by_a_net_trained_on_real_data(tir, cl3_tasks):
    judge, acc = train_judge(cl3_tasks, steps=600)
    assert acc >= 90.0
    q = replay_quality(tir, cl3_tasks, n=200, judge=judge)
    assert q.shape == (5,) and (q >= 70.0).all(), q  # measured: 86-100 % per task
    # a replay model that forgot (embeddings swapped) is caught by the same judge
    swapped = tir.replay_.embeddings.flip(0)
    tir.replay_.embeddings = swapped
    try:
        assert replay_quality(tir, cl3_tasks, n=200, judge=judge)[0] < 30.0
    finally:
        tir.replay_.embeddings = swapped.flip(0)
    with pytest.raises(ValueError, match="needs a HyperCL learner with task_inference='replay'"):
        replay_quality(make_learner("hnet", "split_digits", "cl3", 0, False), cl3_tasks)


def test_run_files_keep_the_replay_side(tir, cl3_tasks, tmp_path):
    hnviz.save_run(tir, tmp_path / "run", benchmark=cl3_tasks.spec)
    run = hnviz.load_run(tmp_path / "run")
    x = torch.cat([t.x_test for t in cl3_tasks])
    assert torch.equal(run.learner.predict_agnostic(x, "cl3"), tir.predict_agnostic(x, "cl3"))
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert torch.equal(run.learner.replay_.generate(run.learner.replay_.embeddings, 4, g1),
                       tir.replay_.generate(tir.replay_.embeddings, 4, g2))
    state = tir.state_dict()
    state.weights["rp.embeddings"] = state.weights["rp.embeddings"][:3]
    with pytest.raises(ValueError, match=r"rp.embeddings of shape \(3, 16\), expected \(5, 16\)"):
        hnviz.HyperCL.from_state_dict(state)


def test_tir_refuses_regression():
    cfg = hnviz.HyperCLConfig.preset("toy_regression", task_inference="replay")
    with pytest.raises(ValueError, match="task_inference='replay' needs classification"):
        hnviz.HyperCL(cfg, progress=False).partial_fit(hnviz.toy_regression()[0])


class Stop(hnviz.Callback):
    def __init__(self, task, step):
        self.at = (task, step)

    def on_step(self, learner, task_id, step, logs):
        if (task_id, step) == self.at:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_checkpoint_resume_is_exact(cl3_tasks, tmp_path):
    """Stopped mid-task (after a checkpoint, TIR and replay training in progress) and
    resumed: every tensor and log equals the uninterrupted run's."""
    cfg = dict(SMALL, n_steps=30)

    def learner():
        return make_learner("hnet_tir", "split_digits", "cl3", 0, False, **cfg)
    ref = hnviz.fit_checkpointed(learner(), cl3_tasks[:3], tmp_path / "a", every=7)
    with pytest.raises(KeyboardInterrupt):
        hnviz.fit_checkpointed(learner(), cl3_tasks[:3], tmp_path / "b", every=7,
                               callbacks=[Stop(2, 17)])
    done = hnviz.resume(tmp_path / "b", cl3_tasks[:3], progress=False)
    assert done.resumed_from_["step"] == 14
    a, b = ref.state_dict(), done.state_dict()
    assert a.weights.keys() == b.weights.keys() and "tir.body" in a.weights
    for k in a.weights:
        assert torch.equal(a.weights[k], b.weights[k]), k
    for k in a.history:
        assert torch.equal(a.history[k], b.history[k]), k


def test_replay_quality_command_prints_the_judged_shares(tir, cl3_tasks, tmp_path, capsys):
    from hnviz.cli.parser import main

    hnviz.save_run(tir, tmp_path / "run", benchmark=cl3_tasks.spec)
    assert main(["replay-quality", str(tmp_path / "run"), "--samples", "100",
                 "--judge-steps", "300"]) == 0
    lines = capsys.readouterr().out.splitlines()
    judge, acc = train_judge(cl3_tasks, steps=300)
    want = replay_quality(tir, cl3_tasks, n=100, judge=judge)
    assert f"judge {acc:.1f} %" in lines[0]
    assert [float(l.rsplit(": ", 1)[1]) for l in lines[1:]] == [round(v, 1) for v in want]
    assert lines[1].startswith("  task 1 (") and len(lines) == 6
    for bad, said in ((["--samples", "0"], "--samples 0 must be from 1 to 10000"),
                      (["--samples", "1000000"], "--samples 1000000 must be from 1 to 10000"),
                      (["--seed", str(2**70)], "--seed 1180591620717411303424 must be from 0")):
        assert main(["replay-quality", str(tmp_path / "run"), *bad]) == 2
        assert said in capsys.readouterr().err
