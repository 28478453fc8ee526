"""Property-based tests (hypothesis): random configs, benchmark options, specs and inputs
either work or raise ``ValueError``/``TypeError`` with a message — never another
exception from deep inside torch, numpy or the standard library."""
import math
import os
import traceback
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hnviz
from hnviz.results.analysis import embedding_path, evaluate_embeddings, forgetting_curves, interpolate
from hnviz.learners.baselines import BaselineConfig
from hnviz.data.benchmarks import from_spec, get_benchmark, options
from hnviz.learners.config import HyperCLConfig

# 200 examples per test; in CI the same ones every run (derandomize), elsewhere new ones.
SETTINGS = settings(deadline=None, suppress_health_check=list(HealthCheck), database=None,
                    max_examples=200, derandomize=bool(os.environ.get("CI")))


HNVIZ = str(Path(hnviz.__file__).parent)
COUNT: Counter = Counter()  # examples tried per test, errors by kind


@st.composite
def often(draw, good, bad):
    """Mostly ``good`` values (about 3 in 4), else ``bad`` ones."""
    return draw(bad) if draw(st.booleans()) and draw(st.booleans()) else draw(good)


def bad_or_ok(call, *args, **kwargs):
    """Run ``call``; a ValueError/TypeError must carry a message and be raised by hnviz's
    own checks (a ``raise`` statement in the hnviz package), not by torch, numpy or
    Python further down. Returns the result or the error."""
    COUNT[call.__name__] += 1
    try:
        return call(*args, **kwargs)
    except (ValueError, TypeError) as e:
        assert str(e).strip(), f"{type(e).__name__} without a message"
        frames = traceback.extract_tb(e.__traceback__)
        last = frames[-1]
        assert last.filename.startswith(HNVIZ) and last.line.startswith("raise "), (
            f"{type(e).__name__} from {last.filename}:{last.lineno} ({last.line!r}), not "
            f"from a raise in hnviz's checks: {e}")
        COUNT[f"{call.__name__}: {type(e).__name__}"] += 1
        return e


@pytest.fixture(scope="module", autouse=True)
def _report():
    yield
    print("\nexamples tried (calls) and clear errors:", dict(sorted(COUNT.items())))


# ------------------------------------------------------------------------ values
weird = st.one_of(
    st.none(), st.booleans(), st.text(max_size=8),
    st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.integers(-5, 300), max_size=4), st.tuples(st.integers(-3, 50)),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from([np.int64(3), np.float32(0.5), np.nan, float("inf"), (), [],
                     "relu", "mlp", "chunked", "stored", "normal", "xavier"]),
)
GOOD = {  # a small valid value per field, so that one bad field is the reason for an error
    "target": st.sampled_from(["mlp"]), "target_hidden": st.lists(st.integers(1, 8), max_size=2),
    "target_activation": st.sampled_from(["relu", "sigmoid", "elu", "tanh"]),
    "multi_head": st.booleans(), "hnet": st.sampled_from(["full", "chunked"]),
    "hnet_hidden": st.lists(st.integers(1, 8), max_size=2),
    "hnet_activation": st.sampled_from(["relu", "sigmoid", "elu", "tanh"]),
    "hnet_init": st.sampled_from(["xavier", "pytorch"]), "emb_dim": st.integers(1, 4),
    "chunk_size": st.integers(1, 300), "chunk_emb_dim": st.integers(1, 4),
    "emb_init": st.sampled_from(["normal", "copy_previous"]),
    "beta": st.floats(0, 10), "reg_targets": st.sampled_from(["stored", "snapshot"]),
    "reg_subset": st.one_of(st.none(), st.integers(1, 3)), "lookahead": st.booleans(),
    "ent_temperature": st.floats(0.1, 10), "lr": st.floats(1e-4, 1e-2),
    "emb_lr": st.one_of(st.none(), st.floats(1e-4, 1e-2)), "n_steps": st.integers(1, 3),
    "batch_size": st.integers(1, 64),
}


@st.composite
def config_kwargs(draw, fields):
    """Up to two fields random (often bad), the others absent or valid."""
    wild = draw(st.lists(st.sampled_from(fields), max_size=2, unique=True))
    out = {}
    for name in fields:
        if name in wild:
            out[name] = draw(weird)
        elif name in GOOD and draw(st.booleans()):
            out[name] = draw(GOOD[name])
    return out


@SETTINGS
@given(config_kwargs(list(GOOD)))
def test_hypercl_config(kwargs):
    cfg = bad_or_ok(HyperCLConfig, **kwargs)
    if isinstance(cfg, HyperCLConfig):  # accepted: it round-trips through JSON types
        assert HyperCLConfig.from_dict(cfg.to_dict()) == cfg
        for name in ("lr", "beta", "ent_temperature"):
            assert math.isfinite(getattr(cfg, name))


@SETTINGS
@given(config_kwargs(["method", "target", "target_hidden", "target_activation", "multi_head",
                      "lr", "n_steps", "batch_size", "ewc_lambda", "si_c", "si_xi",
                      "online_gamma", "fisher_samples"]))
def test_baseline_config(kwargs):
    cfg = bad_or_ok(BaselineConfig, **kwargs)
    if isinstance(cfg, BaselineConfig):
        assert BaselineConfig.from_dict(cfg.to_dict()) == cfg


@SETTINGS
@given(st.fixed_dictionaries({k: GOOD[k] for k in GOOD}))
def test_valid_configs_train(toy, kwargs):
    """Any config the validation accepts trains (a few steps) on the toy tasks."""
    kwargs["n_steps"] = 2
    COUNT["train"] += 1
    learner = hnviz.HyperCL(HyperCLConfig(**kwargs), progress=False).fit(toy.tasks[:2])
    assert learner.n_tasks_ == 2 and np.isfinite(learner.matrix_[1]).all()


# ------------------------------------------------------------- benchmark options
SMALL = ["toy_regression", "permuted_digits", "split_digits"]


option_values = st.one_of(st.integers(0, 4), st.booleans(), st.sampled_from([None, 0.1, "mnist"]),
                          weird)
OPTIONS = ["n_tasks", "seed", "n_train", "n_test", "noise", "padding", "dataset", "colour"]


def small(kwargs):
    """Keep valid sizes small (toy points, tasks) so that every example is quick."""
    for key, cap in (("n_train", 50), ("n_test", 50), ("n_tasks", 4)):
        if isinstance(kwargs.get(key), int) and not isinstance(kwargs[key], bool):
            kwargs[key] = min(kwargs[key], cap)
    return kwargs


@st.composite
def benchmark_call(draw):
    """A benchmark name and options: mostly its own options with small values."""
    name = draw(often(st.sampled_from(SMALL), st.one_of(st.sampled_from(["cifar", ""]), weird)))
    own = list(options(name)) if name in SMALL else OPTIONS
    keys = draw(st.lists(often(st.sampled_from(own), st.sampled_from(OPTIONS)), max_size=3))
    return name, {k: draw(often(st.integers(0, 4), option_values)) for k in keys}


@SETTINGS
@given(benchmark_call())
def test_benchmark_options(call):
    name, kwargs = call
    out = bad_or_ok(get_benchmark, name, **small(kwargs))
    if isinstance(out, hnviz.TaskSequence):
        assert len(out) >= 1 and out.spec["name"] == name
        assert from_spec(out.spec).spec == out.spec


@st.composite
def specs(draw):
    name, kwargs = draw(benchmark_call())
    spec = {"name": name, **kwargs}
    if draw(st.booleans()):
        spec["scenario"] = draw(often(st.sampled_from(["cl1", "cl2", "cl3"]), weird))
    return spec


@SETTINGS
@given(often(specs(), st.one_of(weird, st.dictionaries(st.sampled_from(["name", "seed", "x"]),
                                                       weird, max_size=3))))
def test_spec_from_a_file(spec):
    """``from_spec`` reads specs from other people's run.json: junk gets a clear error."""
    out = bad_or_ok(from_spec, small(spec) if isinstance(spec, dict) else spec)
    if isinstance(out, hnviz.TaskSequence):
        assert {k: out.spec.get(k) for k in spec} == spec


# ------------------------------------------------------------------- inputs
def arrays(valid_shapes=((5, 1), (1,), (2,), (3, 2), (0, 1))):
    """Arrays and tensors of assorted shapes, dtypes and contents (often a valid shape
    with finite values), and other junk."""
    shapes = st.one_of(st.sampled_from(valid_shapes),
                       st.lists(st.integers(0, 4), min_size=0, max_size=3).map(tuple))
    dtypes = st.sampled_from([np.float32, np.float64, np.int64, np.bool_, np.complex64,
                              np.uint8, "U2", object])
    values = st.one_of(st.floats(-3, 3), st.sampled_from([np.nan, np.inf, 1e39]))

    @st.composite
    def draw_array(draw):
        shape, dtype, fill = draw(shapes), draw(dtypes), draw(values)
        if dtype == "U2":
            return np.full(shape, "ab")
        if dtype is object:
            return np.full(shape, None, dtype=object)
        with np.errstate(invalid="ignore", over="ignore"):
            a = np.full(shape, fill).astype(dtype)
        return torch.from_numpy(a) if draw(st.booleans()) and a.dtype != np.uint8 else a
    good = st.builds(lambda shape, fill: np.full(shape, fill, dtype=np.float32),
                     st.sampled_from(valid_shapes), st.floats(-3, 3))
    return often(good, st.one_of(draw_array(), weird,
                                 st.lists(st.lists(st.floats(), max_size=3), max_size=3)))


X_SHAPES, EMB_SHAPES = ((5, 1), (0, 1), (1, 1), (2, 1, 1)), ((2,), (3, 2), (1, 2))
task_ids = often(st.integers(0, 2), st.one_of(st.integers(-5, 5), weird))


@pytest.fixture(scope="module")
def learner(toy):
    cfg = HyperCLConfig.preset("toy_regression", n_steps=5)
    return hnviz.HyperCL(cfg, progress=False).fit(toy)


@SETTINGS
@given(arrays(X_SHAPES), task_ids)
def test_predict(learner, x, task_id):
    out = bad_or_ok(learner.predict, x, task_id)
    if torch.is_tensor(out):
        assert out.shape == (len(out), 1) and torch.isfinite(out).all()


@SETTINGS
@given(arrays(EMB_SHAPES))
def test_generate_weights_and_embeddings(learner, emb):
    out = bad_or_ok(learner.generate_weights, emb)
    if torch.is_tensor(out):
        assert out.shape[-1] == learner.target_.num_params
    bad_or_ok(learner.predict_with_embedding, np.zeros((2, 1)), emb)


@SETTINGS
@given(arrays(X_SHAPES), st.one_of(st.none(), task_ids))
def test_predict_with_embedding_and_head(learner, x, head):
    bad_or_ok(learner.predict_with_embedding, x, learner.embeddings_[0], head)


@SETTINGS
@given(task_ids, task_ids, often(st.integers(2, 6), st.one_of(st.integers(-2, 1), weird)),
       often(st.floats(0, 2), st.one_of(st.floats(-1, 0, exclude_max=True), weird)))
def test_interpolate(learner, toy, a, b, n_steps, extrapolate):
    out = bad_or_ok(interpolate, learner, toy, a, b, n_steps, extrapolate)
    if isinstance(out, dict):
        assert out["metrics"].shape == (len(out["alphas"]), 3)
        assert np.isfinite(out["metrics"]).all()


@SETTINGS
@given(task_ids, task_ids, arrays(((5,), (1,), (0,))))
def test_embedding_path(learner, a, b, alphas):
    out = bad_or_ok(embedding_path, learner, a, b, alphas)
    if isinstance(out, np.ndarray):
        assert out.shape[-1] == learner.config.emb_dim


@SETTINGS
@given(arrays(EMB_SHAPES))
def test_evaluate_embeddings(learner, toy, embs):
    out = bad_or_ok(evaluate_embeddings, learner, toy, embs)
    if isinstance(out, np.ndarray):
        assert out.shape[1] == 3


@SETTINGS
@given(often(st.sampled_from(["toy 0", "toy 2", "digits 0"]), st.one_of(st.integers(), weird)))
def test_score_takes_tasks_only(learner, toy, task):
    if task in ("toy 0", "toy 2"):
        task = toy[int(task[-1])]
    elif task == "digits 0":  # 64 features for a 1-feature net
        task = hnviz.permuted_digits(1)[0]
    out = bad_or_ok(learner.score, task)
    if isinstance(out, float):
        assert np.isfinite(out)


@SETTINGS
@given(arrays(((3, 3), (1, 1), (2, 2))))
def test_metrics_and_curves(R):
    bad_or_ok(hnviz.core.metrics.summary, R, "accuracy")
    bad_or_ok(forgetting_curves, R)


@SETTINGS
@given(arrays(((2,),)))
def test_init_embedding(toy, emb):
    cfg = HyperCLConfig.preset("toy_regression", n_steps=2)
    learner = hnviz.HyperCL(cfg, progress=False)
    bad_or_ok(learner.partial_fit, toy[0], init_embedding=emb)


@SETTINGS
@given(often(st.sampled_from([None, "toy_regression", "permuted_digits"]), weird),
       often(st.integers(0, 2**31), weird), often(st.booleans(), weird),
       often(st.just([]), weird))
def test_learner_constructor(config, random_state, progress, callbacks):
    for cls in (hnviz.HyperCL, hnviz.BaselineCL):
        out = bad_or_ok(cls, config, random_state, progress, callbacks)
        if isinstance(out, cls):
            assert out.random_state == random_state


@SETTINGS
@given(often(st.sampled_from(["toy", "toy[:1]", "digits"]), st.one_of(weird, st.just([1, 2]))))
def test_fit_takes_task_sequences(toy, tasks):
    if tasks == "toy":
        tasks = toy
    elif tasks == "toy[:1]":
        tasks = toy[:1]
    elif tasks == "digits":  # 3 tasks of another shape: fine on a fresh learner
        tasks = hnviz.permuted_digits(2)
    cfg = HyperCLConfig.preset("toy_regression", n_steps=2)
    out = bad_or_ok(hnviz.HyperCL(cfg, progress=False).fit, tasks)
    if isinstance(out, hnviz.HyperCL):
        assert out.n_tasks_ == len(tasks)


# ------------------------------------------------------------------ run directories
RUN_FUZZ = r"""
import json, os, resource, shutil, sys, time
from hypothesis import HealthCheck, given, settings, strategies as st
import hnviz

src, work, files = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False)
    | st.integers(0, 2**62) | st.text(max_size=12),
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c, max_size=4),
    max_leaves=12)
stats = {"examples": 0, "loaded": 0, "refused": 0, "worst_seconds": 0.0}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def key_paths(obj, prefix=()):
    out = [prefix] if prefix else []
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for k, v in items:
        out += key_paths(v, prefix + (k,))
    return out


def damage(data, raw, is_json):
    kind = data.draw(st.sampled_from(["flip", "truncate", "append"] + ["value"] * 3 * is_json))
    if kind == "flip":
        out = bytearray(raw)
        for i in data.draw(st.lists(st.integers(0, len(raw) - 1), min_size=1, max_size=8)):
            out[i] ^= data.draw(st.integers(1, 255))
        return bytes(out)
    if kind == "truncate":
        return raw[:data.draw(st.integers(0, len(raw) - 1))]
    if kind == "append":
        return raw + data.draw(st.binary(min_size=1, max_size=64))
    info = json.loads(raw)
    path = data.draw(st.sampled_from(key_paths(info)))
    node = info
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = data.draw(values)
    return json.dumps(info).encode()


@settings(max_examples=int(sys.argv[4]), deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def fuzz(data):
    run = os.path.join(work, "run")
    shutil.rmtree(run, ignore_errors=True)
    shutil.copytree(src, run)
    name = data.draw(st.sampled_from(files))
    path = os.path.join(run, name)
    with open(path, "rb") as f:
        raw = f.read()
    with open(path, "wb") as f:
        f.write(damage(data, raw, name.endswith(".json")))
    start = time.perf_counter()
    try:
        hnviz.load_run(run)
        stats["loaded"] += 1
    except ValueError:  # DamagedFileError, UnsafePathError, ValueError: each names the file
        stats["refused"] += 1
    stats["examples"] += 1
    stats["worst_seconds"] = max(stats["worst_seconds"], time.perf_counter() - start)


fuzz()
stats["rss_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024
print(json.dumps(stats))
"""


@pytest.mark.parametrize("layout", ["schema 2", "schema 1"])
def test_damaged_run_directories_are_refused_quickly_in_bounded_memory(layout, tmp_path):
    """Random damage to each file of a run (flipped bytes, truncation, appended bytes,
    any JSON value replaced — sizes and shapes too): loading succeeds or raises a
    ValueError (DamagedFileError, UnsafePathError), never anything else, each load within
    2 s and the whole fuzz within 150 MiB more peak memory than at its start."""
    import json
    import subprocess
    import sys

    if layout == "schema 2":
        cfg = HyperCLConfig.preset("toy_regression", n_steps=20)
        toy = hnviz.toy_regression()
        hnviz.save_run(hnviz.HyperCL(cfg, progress=False).fit(toy), tmp_path / "src",
                       benchmark=toy.spec)
        files = "run.json,gen-000001/weights.safetensors,gen-000001/history.safetensors"
    else:
        import shutil

        shutil.copytree(Path(__file__).parent / "data" / "runs_v0.1" / "toy_hnet", tmp_path / "src")
        files = "run.json,metrics.json,weights.safetensors,history.safetensors"
    res = subprocess.run([sys.executable, "-c", RUN_FUZZ, str(tmp_path / "src"), str(tmp_path),
                          files, "200"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    print(layout, stats)
    assert stats["examples"] == 200 and stats["refused"] >= 150
    assert stats["worst_seconds"] < 2 and stats["rss_mib"] < 150
