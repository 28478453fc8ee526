"""Bring your own hypernetwork: the protocol the widgets read, and hypnettorch's HMLP and
ChunkedHMLP with an MLP main net through ``hnviz.from_hypnettorch``. Weights and outputs
equal hypnettorch's own forward in float64 (values and gradients); the three widgets open
such models headless."""
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import hnviz  # noqa: E402
from hnviz.results.analysis import evaluate_embeddings, interpolate  # noqa: E402
from hnviz.widgets import EmbeddingExplorer, ForgettingDashboard, InterpolationExplorer  # noqa: E402

hnets = pytest.importorskip("hypnettorch.hnets")
mnets = pytest.importorskip("hypnettorch.mnets")


def build(kind: str, n_in: int = 1, n_out: int = 1, T: int = 3, dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    mnet = mnets.MLP(n_in=n_in, n_out=n_out, hidden_layers=(10, 10), no_weights=True,
                     verbose=False)
    if kind == "hmlp":
        hnet = hnets.HMLP(mnet.param_shapes, cond_in_size=2, layers=(10, 10), num_cond_embs=T,
                          verbose=False)
    else:
        hnet = hnets.ChunkedHMLP(mnet.param_shapes, chunk_size=40, chunk_emb_size=3,
                                 cond_in_size=2, layers=(10,), num_cond_embs=T, verbose=False)
    hnet = hnet.to(dtype)
    with torch.no_grad():  # embeddings apart, so that each task's net differs
        for p in hnet.conditional_params:
            p.normal_(0, 1)
    return hnet, mnet


@pytest.mark.parametrize("kind", ["hmlp", "chunked"])
def test_weights_and_outputs_equal_hypnettorchs_forward_float64(kind, toy):
    hnet, mnet = build(kind)
    adapter = hnviz.learners.hypnettorch_adapter.HypnettorchModel(hnet, mnet, None, toy)
    E = adapter.embeddings_
    assert E.dtype == torch.float64 and E.shape == (3, 2)
    np.testing.assert_array_equal(E, torch.stack(list(hnet.conditional_params)).detach())
    W = adapter.generate_weights(E)  # cond_input path; hypnettorch's own: cond_id
    own = hnet.forward(cond_id=[0, 1, 2], ret_format="flattened")
    assert W.shape == (3, hnet.num_outputs) and W.dtype == torch.float64
    torch.testing.assert_close(W, own, rtol=1e-12, atol=1e-14)
    x = torch.linspace(-4, 4, 17, dtype=torch.float64)[:, None]
    out = adapter.net_output(x, W, 1)  # vmapped over the three nets
    loop = torch.stack([mnet.forward(x, weights=hnet.forward(cond_id=t)) for t in range(3)])
    assert out.shape == (3, 17, 1)
    torch.testing.assert_close(out, loop, rtol=1e-12, atol=1e-14)
    # gradients through the vmapped main net equal those through hypnettorch's loop
    r = torch.randn_like(loop)
    params = list(hnet.unconditional_params) + list(hnet.conditional_params)
    g_out = torch.autograd.grad((adapter.net_output(x, adapter.generate_weights(
        torch.stack(list(hnet.conditional_params))), 0) * r).sum(), params)
    g_loop = torch.autograd.grad((torch.stack([mnet.forward(x, weights=hnet.forward(cond_id=t))
                                               for t in range(3)]) * r).sum(), params)
    for a, b in zip(g_out, g_loop):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_scores_and_the_recorded_matrix_are_the_tasks_mse(toy):
    hnet, mnet = build("hmlp")
    model = hnviz.from_hypnettorch(hnet, mnet, tasks=toy)
    with torch.no_grad():
        mse = [float(((mnet.forward(t.x_test.double(), weights=hnet.forward(cond_id=i))
                       - t.y_test) ** 2).mean()) for i, t in enumerate(toy)]
    np.testing.assert_allclose(model.scores(), mse, rtol=1e-10)
    for i in range(3):
        row = model.record_scores()
        np.testing.assert_allclose(row, mse[:i + 1], rtol=1e-10)
    R = model.matrix_
    assert R.shape == (3, 3) and np.isnan(R[np.triu_indices(3, 1)]).all()
    np.testing.assert_allclose(R[-1], mse, rtol=1e-10)
    with pytest.raises(ValueError, match="already has a row"):
        model.record_scores()
    assert model.summary()["average_final"] == pytest.approx(np.mean(mse))


def test_multi_head_classification_uses_each_tasks_outputs(digits):
    tasks = digits[1]
    T, k = len(tasks), tasks[0].n_outputs
    hnet, mnet = build("chunked", n_in=tasks[0].in_features, n_out=T * k, T=T,
                       dtype=torch.float32)
    model = hnviz.from_hypnettorch(hnet, mnet, tasks=tasks, head_size=k)
    assert model.metric_ == "accuracy"
    got = evaluate_embeddings(model, tasks, model.embeddings_)  # (T, T)
    want = np.zeros((T, T))
    with torch.no_grad():
        for b in range(T):
            W = hnet.forward(cond_id=b)
            for j, task in enumerate(tasks):
                logits = mnet.forward(task.x_test[:], weights=W)[:, j * k:(j + 1) * k]
                want[b, j] = float((logits.argmax(1) == task.y_test).float().mean() * 100)
    np.testing.assert_allclose(got, want, atol=1e-4)
    np.testing.assert_allclose(np.diag(got), model.scores(), atol=1e-4)
    w = EmbeddingExplorer(model, resolution=4, n_samples=20)  # 2-D embeddings: the plane itself
    assert w.errors == []
    w.state.point = tuple(w.points[1])  # task 2's embedding: the bars are its net's accuracy
    np.testing.assert_allclose(w.net.bar_heights(), got[1], atol=1e-3)
    np.testing.assert_allclose(w.net.own.get_offsets()[:, 1], model.scores(), atol=1e-4)


def test_widgets_open_a_hypnettorch_model(toy):
    hnet, mnet = build("hmlp")
    model = hnviz.from_hypnettorch(hnet, mnet, tasks=toy)
    w = EmbeddingExplorer(model, resolution=6)
    assert w.errors == [] and w.projection.method == "identity"
    for t in range(3):  # at each task's embedding: that task's own net and its MSE
        w.state.point = tuple(w.points[t])
        ys = model.predict_with_embedding(w.net.x, model.embeddings_[t].float())[:, 0]
        np.testing.assert_allclose(w.net.line.get_ydata(), ys.numpy(), rtol=1e-5)
        assert w.net.values[t] == pytest.approx(model.scores()[t], rel=1e-4)
    i = InterpolationExplorer(model, a=0, b=2, n_steps=5)
    assert i.errors == []
    path = interpolate(model, toy, 0, 2, 5)
    np.testing.assert_allclose(i.lines[2].get_ydata(), path["metrics"][:, 2])
    assert path["metrics"][path["alphas"] == 1.0, 2][0] == pytest.approx(model.scores()[2],
                                                                          rel=1e-4)
    d = ForgettingDashboard({"hypnettorch": model})
    assert d.errors == ["could not open run 'hypnettorch': ValueError: this model has no matrix "
                        "R: pass matrix=R (T x T, NaN above the diagonal) or call "
                        "record_scores() after learning each task", "no run to show"]
    for _ in range(3):
        model.record_scores()
    d = ForgettingDashboard({"hypnettorch": model})
    assert d.errors == [] and d.metric == "mse"
    np.testing.assert_array_equal(d.matrices["hypnettorch"], model.matrix_)


class LinearHypernet:
    """The protocol by hand, no hypnettorch: weights = A e + c for a 1-16-1 tanh net."""

    def __init__(self, tasks, seed=0):
        g = torch.Generator().manual_seed(seed)
        self.tasks_ = list(tasks)
        self.embeddings_ = torch.randn(len(self.tasks_), 2, generator=g)
        self.A, self.c = torch.randn(49, 2, generator=g), torch.randn(49, generator=g)

    def generate_weights(self, emb):
        return emb @ self.A.T + self.c  # (B, E) -> (B, 49)

    def net_output(self, x, weights, task_id):
        w1, b1, w2, b2 = weights[:, :16], weights[:, 16:32], weights[:, 32:48], weights[:, 48:]
        h = torch.tanh(x[None] * w1[:, None] + b1[:, None])  # (B, N, 16)
        return (h * w2[:, None]).sum(-1, keepdim=True) + b2[:, None]  # (B, N, 1)


def test_a_hand_written_protocol_model_opens_in_the_widgets(toy):
    model = LinearHypernet(toy)
    assert isinstance(model, hnviz.HypernetModel)
    w = EmbeddingExplorer(model, resolution=5)
    assert w.errors == []
    explorable = w.learner
    for t in range(3):
        out = model.net_output(toy[t].x_test, model.generate_weights(model.embeddings_[t:t + 1]), t)
        mse = float(((out[0] - toy[t].y_test) ** 2).mean())
        assert explorable.scores()[t] == pytest.approx(mse, rel=1e-5)
    assert InterpolationExplorer(model, a=1, b=2, n_steps=3).errors == []


def test_mistakes_say_what_to_pass(toy, digits):
    hnet, mnet = build("hmlp")
    with pytest.raises(TypeError, match="needs tasks="):
        hnviz.from_hypnettorch(hnet, mnet)
    other = mnets.MLP(n_in=1, n_out=1, hidden_layers=(5,), no_weights=True, verbose=False)
    with pytest.raises(ValueError, match="target_shapes are not the main network's"):
        hnviz.from_hypnettorch(hnet, other, tasks=toy)
    with pytest.raises(ValueError, match="2 task\\(s\\) for 3 embeddings"):
        hnviz.from_hypnettorch(hnet, mnet, tasks=list(toy)[:2])
    with pytest.raises(ValueError, match="cond_input=embeddings\\) failed"):
        hnviz.from_hypnettorch(hnet, mnet, torch.zeros(3, 5, dtype=torch.float64), tasks=toy)
    with pytest.raises(TypeError, match="has no param_shapes"):
        hnviz.from_hypnettorch(hnet, object(), tasks=toy)
    model = hnviz.from_hypnettorch(hnet, mnet, tasks=toy)
    with pytest.raises(ValueError, match="does not fit: pass \\(E,\\) or \\(B, E\\) with E = 2"):
        model.generate_weights(torch.zeros(3))
    w = EmbeddingExplorer(object())
    assert "hypernetwork model (hnviz.from_hypnettorch)" in w.errors[0]


def test_the_guides_hand_written_model_runs_as_written():
    guide = (Path(__file__).resolve().parent.parent / "docs" / "guide.md").read_text()
    section = guide[guide.index("## Bring your own hypernetwork"):]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[0]
    scope: dict = {}
    exec(compile(code, "guide.md", "exec"), scope)
    model = scope["model"]
    assert isinstance(model, hnviz.ExplorableModel) and model.scores().shape == (3,)
    assert np.isfinite(model.scores()).all()


def test_outputs_that_do_not_fit_the_tasks_are_refused_in_one_line(digits):
    tasks = digits[1]
    T, k = len(tasks), tasks[0].n_outputs
    hnet, mnet = build("hmlp", n_in=tasks[0].in_features, n_out=T * k, T=T, dtype=torch.float32)
    with pytest.raises(ValueError, match=f"returned shape \\(1, 2, {T * k}\\); expected .*"
                                         f"\\(1, 2, {k}\\).*head_size"):
        hnviz.from_hypnettorch(hnet, mnet, tasks=tasks)  # a multi-head net, head_size missing
    with pytest.raises(ValueError, match=f"returned shape \\(1, 2, {T * k}\\); expected"):
        hnviz.from_hypnettorch(hnet, mnet, tasks=tasks, head_size=T * k)  # beyond the outputs
    small = mnets.MLP(n_in=5, n_out=k, hidden_layers=(4,), no_weights=True, verbose=False)
    h2 = hnets.HMLP(small.param_shapes, cond_in_size=2, num_cond_embs=T, verbose=False)
    with pytest.raises(ValueError, match="net_output on task 1 .*'s inputs \\(2, 64\\) failed"):
        hnviz.from_hypnettorch(h2, small, tasks=tasks)  # the main net takes 5 inputs, not 64
    with pytest.raises(ValueError, match="E = 5 must be the hypernetwork's cond_in_size"):
        hnviz.from_hypnettorch(hnet, mnet, torch.zeros(T, 5), tasks=tasks, head_size=k)


def test_eval_mode_while_explored_and_the_nets_mode_kept(toy):
    torch.manual_seed(0)
    mnet = mnets.MLP(n_in=1, n_out=1, hidden_layers=(10, 10), no_weights=True,
                     dropout_rate=0.5, verbose=False)
    hnet = hnets.HMLP(mnet.param_shapes, cond_in_size=2, layers=(10, 10), num_cond_embs=3,
                      dropout_rate=0.5, verbose=False)
    model = hnviz.from_hypnettorch(hnet, mnet, tasks=toy)  # vmap refuses dropout in train mode
    first = model.scores()
    np.testing.assert_array_equal(model.scores(), first)  # no dropout noise
    assert hnet.training and mnet.training  # the training loop's mode is left as it was
    hnet.eval()
    mnet.eval()
    with torch.no_grad():
        own = [float(((mnet.forward(t.x_test, weights=hnet.forward(cond_id=i)) - t.y_test) ** 2)
                     .mean()) for i, t in enumerate(toy)]
    np.testing.assert_allclose(first, own, rtol=1e-5)


class Float64Hypernet(LinearHypernet):
    """The hand-written model in float64, with its own R and embeddings as numpy."""

    def __init__(self, tasks):
        super().__init__(tasks)
        self.A, self.c = self.A.double(), self.c.double()
        self.embeddings_ = self.embeddings_.double()
        self.matrix_ = np.array([[0.5, np.nan, np.nan], [0.6, 0.4, np.nan], [0.7, 0.5, 0.3]])


def test_protocol_models_in_float64_with_their_own_matrix(toy):
    model = Float64Hypernet(toy)
    w = EmbeddingExplorer(model, resolution=4)
    assert w.errors == []
    want = [float(((model.net_output(t.x_test.double(), model.generate_weights(
        model.embeddings_[i:i + 1]), i)[0] - t.y_test) ** 2).mean()) for i, t in enumerate(toy)]
    np.testing.assert_allclose(w.learner.scores(), want, rtol=1e-12)  # float64 throughout
    assert InterpolationExplorer(model, a=0, b=2, n_steps=3).errors == []
    d = ForgettingDashboard(model)
    assert d.errors == [] and list(d.matrices) == ["Float64Hypernet"]
    np.testing.assert_array_equal(d.matrices["Float64Hypernet"], model.matrix_)
    model.embeddings_ = model.embeddings_.numpy()  # numpy embeddings are read as well
    assert hnviz.ExplorableModel(model).embeddings_.shape == (3, 2)


def test_a_protocol_model_that_breaks_its_contract_is_named(toy):
    class Flat(LinearHypernet):
        def net_output(self, x, weights, task_id):  # (B, N) instead of (B, N, 1)
            return super().net_output(x, weights, task_id)[..., 0]

    with pytest.raises(ValueError, match="net_output for task 1 .* returned shape \\(1, 2\\); "
                                         "expected \\(B, N, out\\) = \\(1, 2, 1\\)"):
        hnviz.ExplorableModel(Flat(toy))
    broken = LinearHypernet(toy)
    broken.embeddings_[1, 0] = float("nan")
    with pytest.raises(ValueError, match="embedding of task 2 .*embeddings_\\[1\\], holds NaN"):
        hnviz.ExplorableModel(broken)
    w = EmbeddingExplorer(Flat(toy))
    assert len(w.errors) == 1 and "net_output for task 1" in w.errors[0]
    shuffled = LinearHypernet(list(toy)[::-1])
    with pytest.raises(ValueError, match="tasks_\\[0\\] is task id 2; pass the whole task "
                                         "sequence in order"):
        hnviz.ExplorableModel(shuffled)


def test_record_scores_follows_embeddings_added_while_training(toy):
    model = LinearHypernet(toy)
    all_embeddings = model.embeddings_.clone()
    model.embeddings_ = all_embeddings[:1]  # one task learned so far
    wrapped = hnviz.ExplorableModel(model)
    wrapped.record_scores()
    model.embeddings_ = all_embeddings  # two more tasks learned
    wrapped.record_scores()
    wrapped.record_scores()
    assert wrapped.matrix_.shape == (3, 3) and wrapped.n_tasks_ == 3
    np.testing.assert_allclose(wrapped.matrix_[-1], wrapped.scores())
    assert EmbeddingExplorer(wrapped, resolution=4).errors == []


def test_one_dimensional_embeddings_open_in_the_explorer(toy):
    model = LinearHypernet(toy)
    model.embeddings_ = model.embeddings_[:, :1]
    model.A = model.A[:, :1]
    w = EmbeddingExplorer(model, resolution=4)
    assert w.errors == [] and w.embedding_at((0.3, 0.0)).shape == (1,)
    w.state.point = (0.3, 0.0)
    assert w.errors == []
