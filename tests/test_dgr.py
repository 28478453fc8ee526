"""DGR+distill: the distillation loss by hand, replay that keeps old classes, files."""
import pytest
import torch

import hnviz
from hnviz.experiments.compare import compare, make_learner
from hnviz.learners.dgr import DGR
from hnviz.data.scenarios import apply_scenario


@pytest.fixture(scope="module")
def cl3_tasks():
    return apply_scenario(hnviz.split_digits(), "cl3")


def test_distillation_puts_no_mass_on_new_classes(cl3_tasks):
    """After task 1 the replay term is T^2 KL(old || new) over classes 0..3 with the old
    net's probabilities padded by zeros for classes 2, 3 (computed here by hand)."""
    learner = make_learner("dgr", "split_digits", "cl3", 0, False, n_steps=30)
    learner.partial_fit(cl3_tasks[0])
    theta_old, dec_old = learner.theta_.detach().clone(), learner.decoder_theta_.detach().clone()
    gen_state = learner.gen_.get_state()
    opt = torch.optim.SGD([learner.theta_], lr=0.0)  # no change: the losses only
    vae_opt = torch.optim.SGD([learner.decoder_theta_], lr=0.0)
    x, y = cl3_tasks[1].x_train[:16], cl3_tasks[1].y_train[:16] + 2
    logs = learner._step(opt, vae_opt, x, y, (theta_old, dec_old, 2), 4, 1)
    g = torch.Generator()
    g.set_state(gen_state)
    torch.randn(16, learner.config.vae_latent, generator=g)  # the data ELBO's draw comes first
    fake = torch.sigmoid(learner.decoder_(torch.randn(16, learner.config.vae_latent,
                                                      generator=g), dec_old))
    T = learner.config.distill_temperature
    p_old = torch.softmax(learner.target_(fake, theta_old)[:, :2] / T, -1)
    logq = torch.log_softmax(learner.target_(fake, learner.theta_.detach())[:, :4] / T, -1)
    by_hand = T * T * (p_old * (p_old.log() - logq[:, :2])).sum(-1).mean()
    assert logs["reg_loss"] == pytest.approx(by_hand.item(), rel=1e-5)


def test_dgr_keeps_old_classes_where_fine_tuning_loses_them(cl3_tasks, tmp_path):
    summary = compare(cl3_tasks, "split_digits", "cl3", ["dgr", "finetune"], [0], tmp_path,
                      progress=False, n_steps=150)
    dgr, ft = (summary["methods"][m]["average_final"]["mean"] for m in ("dgr", "finetune"))
    assert ft <= 21.0 and dgr >= ft + 40.0, (dgr, ft)  # measured: 75.7 vs 20.0
    run = hnviz.load_run(tmp_path / "dgr" / "seed0")
    assert isinstance(run.learner, DGR) and run.metrics["method"] == "dgr"
    x = cl3_tasks[0].x_test
    fresh = make_learner("dgr", "split_digits", "cl3", 0, False, n_steps=150).fit(cl3_tasks)
    assert torch.equal(run.learner.predict_agnostic(x, "cl3"), fresh.predict_agnostic(x, "cl3"))
    assert run.learner.matrix_[-1].mean() == pytest.approx(dgr)


def test_dgr_needs_a_shared_head_and_cl2_cl3():
    with pytest.raises(ValueError, match="do not run in cl1"):
        make_learner("dgr", "split_digits", "cl1", 0, False)
    with pytest.raises(ValueError, match="DGR needs method='dgr' and one shared head"):
        DGR(hnviz.BaselineConfig.preset("split_digits", method="dgr", multi_head=True))
    with pytest.raises(ValueError, match="use DGR"):
        hnviz.BaselineCL(hnviz.BaselineConfig(method="dgr"))
