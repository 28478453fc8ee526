"""HNET+R (hnviz.learners.hnet_r): a classifier trained on replay from a regularized replay
hypernetwork; what it keeps, its loss against a plain loop, its files."""
import json

import pytest
import torch
import torch.nn.functional as F

import hnviz
from hnviz.experiments.compare import make_learner
from hnviz.learners.dgr import distill_loss
from hnviz.learners.hnet_r import HNetR, HNetRConfig
from hnviz.data.scenarios import apply_scenario

SMALL = {"n_steps": 120}


@pytest.fixture(scope="module")
def cl3_tasks():
    return apply_scenario(hnviz.split_digits(), "cl3")


@pytest.fixture(scope="module")
def fitted(cl3_tasks):
    return make_learner("hnet_r", "split_digits", "cl3", 0, False, **SMALL).fit(cl3_tasks[:3])


def test_replay_keeps_earlier_tasks_where_finetuning_forgets_them(fitted, cl3_tasks):
    finetune = make_learner("finetune", "split_digits", "cl3", 0, False, **SMALL).fit(cl3_tasks[:3])
    kept, lost = fitted.summary()["average_final"], finetune.summary()["average_final"]
    assert lost < 40 < 75 < kept, (kept, lost)  # fine-tuning: only the last task's 2 digits
    assert fitted.matrix_[2, 0] > 60  # the first task, two tasks later


def test_the_replay_hypernetwork_keeps_each_earlier_decoder(cl3_tasks):
    """The output regularizer holds task 1's generated decoder while tasks 2-3 train."""
    learner = make_learner("hnet_r", "split_digits", "cl3", 0, False, **SMALL)
    learner.partial_fit(cl3_tasks[0])
    rp = learner.replay_
    before = rp.hnet(rp.embeddings).detach().clone()
    learner.partial_fit(cl3_tasks[1]).partial_fit(cl3_tasks[2])
    after = rp.hnet(rp.embeddings[:1]).detach()
    drift = float((after - before).norm() / before.norm())
    assert drift < 0.06, drift
    free = make_learner("hnet_r", "split_digits", "cl3", 0, False, rp_beta=0.0, **SMALL)
    free.partial_fit(cl3_tasks[0])
    start = free.replay_.hnet(free.replay_.embeddings).detach().clone()
    free.partial_fit(cl3_tasks[1]).partial_fit(cl3_tasks[2])
    moved = float((free.replay_.hnet(free.replay_.embeddings[:1]).detach() - start).norm()
                  / start.norm())
    assert moved > 3 * drift, (moved, drift)


def test_task_distillation_matches_a_loop_over_samples(fitted):
    """``replay_targets="task"``: each replayed input's old probabilities renormalised on
    its own task's classes, T^2 KL against the new net, as a plain per-sample loop."""
    torch.manual_seed(0)
    T, D = 2.0, fitted.target_.in_features
    fake = torch.randn(6, D)
    mask = torch.zeros(6, 6, dtype=torch.bool)
    for i, task in enumerate([0, 0, 1, 1, 2, 2]):
        mask[i, 2 * task:2 * task + 2] = True
    old = fitted.theta_.detach() + 0.05 * torch.randn(fitted.theta_.shape)
    got = distill_loss(fitted.target_, fitted.theta_, old, fake, 6, 6, T, mask)
    total = 0.0
    for i in range(6):
        lo = fitted.target_(fake[i:i + 1], old)[0, :6].double() / T
        new = fitted.target_(fake[i:i + 1], fitted.theta_.detach())[0, :6].double() / T
        cls = mask[i].nonzero().flatten()
        p = torch.softmax(lo[cls], 0)
        logq = torch.log_softmax(new, 0)[cls]
        total += float((p * (p.log() - logq)).sum())
    assert got.item() == pytest.approx(T * T * total / 6, rel=1e-5)
    # and "all" is DGR's distillation over every class seen
    plain = F.kl_div(torch.log_softmax(fitted.target_(fake, fitted.theta_)[:, :6] / T, -1),
                     torch.softmax(fitted.target_(fake, old)[:, :6] / T, -1),
                     reduction="batchmean") * T * T
    assert distill_loss(fitted.target_, fitted.theta_, old, fake, 6, 6, T).item() == \
        pytest.approx(plain.item(), rel=1e-6)


def test_parameters_by_arithmetic_match_the_tensors(fitted, cl3_tasks):
    rp = fitted.replay_
    real = (fitted.theta_.numel() + sum(p.numel() for p in rp.hnet.parameters())
            + sum(p.numel() for p in rp.encoder.parameters()) + rp.embeddings.numel())
    assert fitted.trainable_params_ == real
    layout = fitted.layout_for(cl3_tasks[0])
    templates = fitted.target_.num_params + rp.decoder.num_params
    assert HNetR.described_params(fitted.config, layout, 3) == real + templates


def test_run_files_round_trip_and_hold_no_task_classifier(fitted, cl3_tasks, tmp_path):
    hnviz.save_run(fitted, tmp_path / "run", benchmark=cl3_tasks.spec)
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["learner"] == "hnet_r"
    run = hnviz.load_run(tmp_path / "run")
    assert type(run.learner) is HNetR
    x = cl3_tasks[1].x_test[:50]
    assert torch.equal(run.learner.predict_agnostic(x, "cl3"), fitted.predict_agnostic(x, "cl3"))
    names = set(run.learner.state_dict().weights)
    assert "rp.embeddings" in names and not any(n.startswith("tir.") for n in names)


def test_same_seed_same_weights(cl3_tasks):
    a, b = (make_learner("hnet_r", "split_digits", "cl3", 4, False, n_steps=20).fit(cl3_tasks[:2])
            for _ in range(2))
    for name, tensor in a.state_dict().weights.items():
        assert torch.equal(tensor, b.state_dict().weights[name]), name


def test_mistakes_are_named():
    with pytest.raises(ValueError, match="do not run in cl1; use --scenario cl2 or cl3"):
        make_learner("hnet_r", "split_digits", "cl1", 0, False)
    with pytest.raises(ValueError, match="one shared head"):
        HNetR(HNetRConfig.preset("split_digits", multi_head=True))
    with pytest.raises(ValueError, match="replay_targets"):
        HNetRConfig(replay_targets="some")
    with pytest.raises(ValueError, match="HNET\\+R needs classification tasks"):
        HNetR(HNetRConfig(n_steps=2)).fit(hnviz.toy_regression())


def test_reconstructed_current_inputs_are_the_current_vae_output(fitted, cl3_tasks):
    """``current_inputs="reconstructed"``: the classifier sees sigmoid(decoder(mu)) with
    the decoder the replay hypernetwork generates for the task in progress."""
    learner = make_learner("hnet_r", "split_digits", "cl3", 0, False, n_steps=3,
                           current_inputs="reconstructed")
    learner.partial_fit(cl3_tasks[0])
    rp = learner.replay_.start(cl3_tasks[1], learner.gen_)
    x = cl3_tasks[1].x_train[:7]
    got = learner._reconstructed(x, rp)
    model = learner.replay_
    with torch.no_grad():
        w = model.hnet(rp.state.emb[None])[0]
        mu = model.encoder(x)[:, :model.config.vae_latent]
        want = torch.sigmoid(model.decoder(mu, w))
    assert got.shape == x.shape and torch.allclose(got, want)
    assert float((got - x).abs().mean()) > 0.01  # not the images themselves


def test_replay_analysis_of_an_hnet_r_run_says_what_it_lacks(fitted):
    from hnviz.results.analysis import tir_probabilities

    with pytest.raises(ValueError, match="no replay model with a task classifier"):
        tir_probabilities(fitted, torch.zeros(2, 64))
    assert fitted.penalty() is None and HNetR().config.multi_head is False
