"""Acceptance: every kind of file in a run directory and in a checkpoint, truncated,
with flipped bytes or with edited JSON/tensors, gives a clear error naming the file; the
load changes no file (not even the damaged one); widgets show the message."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save

import hnviz
from hnviz.store.checkpoint import list_checkpoints
from hnviz.io.safeio import sha256
from hnviz.widgets import ForgettingDashboard


@pytest.fixture
def runs(saved_runs):
    """A saved HNET run, a saved EWC run, and an unfinished run's checkpoints."""
    return saved_runs


def snapshot(d):
    return {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in sorted(d.rglob("*"))
            if p.is_file()}


def truncate(p):
    p.write_bytes(p.read_bytes()[:len(p.read_bytes()) // 2])


def empty(p):
    p.write_bytes(b"")


def flip(at):
    def damage(p):
        raw = bytearray(p.read_bytes())
        i = int(len(raw) * at)
        for j in range(i, i + 3):
            raw[j] ^= 0xFF
        p.write_bytes(bytes(raw))
    return damage


def edit_json(change):
    def damage(p):
        data = json.loads(p.read_text())
        change(data)
        p.write_text(json.dumps(data))
    return damage


def edit_tensors(change, vouch="run.json"):
    """Change the tensors and update the size and checksum that vouch for them, so that
    the content checks (shapes, NaN) are what must catch it."""
    def damage(p):
        tensors = load_file(p)
        change(tensors)
        raw = save(tensors)
        p.write_bytes(raw)
        j = p.with_suffix(".json") if vouch == "checkpoint" else p.parent.parent / vouch
        info = json.loads(j.read_text())
        if vouch == "checkpoint":
            info["sha256"] = sha256(raw)
        else:
            info["files"][p.name] = {"bytes": len(raw), "sha256": sha256(raw)}
        j.write_text(json.dumps(info))
    return damage


def nan_in(key):
    def change(t):
        t[key] = t[key].clone()
        t[key].view(-1)[0] = float("nan")
    return change


def pop(*keys):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        d.pop(keys[-1])
    return change


def put(value, *keys):
    def change(d):
        for k in keys[:-1]:
            d = d[k]
        d[keys[-1]] = value
    return change


W, H = "gen-000001/weights.safetensors", "gen-000001/history.safetensors"
RUN_DAMAGE = {  # file -> {damage name: (damage, expected words besides the file name)}
    "run.json": {
        "truncated": (truncate, "cannot read"), "empty": (empty, "cannot read"),
        "flipped bytes": (flip(0.5), "cannot read"),
        "missing key": (edit_json(pop("config")), "lacks 'config'"),
        "unknown schema": (edit_json(put(99, "schema_version")), "schema version 99"),
        "bad config value": (edit_json(put(-1.0, "config", "lr")), "lr must be a finite number > 0"),
        "unknown config field": (edit_json(put(1, "config", "betta")), "unknown config field"),
        "wrong target shape": (edit_json(put(4, "target", "n_outputs")), "does not fit"),
        "fewer tasks": (edit_json(lambda d: d["tasks"].pop()), "expected (2, 2)"),
        "NaN in JSON": (lambda p: p.write_text(p.read_text().replace('"beta": 0.005',
                                                                    '"beta": NaN')), "NaN"),
        "inf in JSON": (lambda p: p.write_text(p.read_text().replace('"beta": 0.005',
                                                                    '"beta": 1e999')), "too large"),
        "nested JSON": (lambda p: p.write_text('{"a": ' * 100_000 + "1" + "}" * 100_000),
                        "nested too deeply"),
        "not an object": (lambda p: p.write_text("[1, 2]"), "not an object"),
        "checksum": (edit_json(put("0" * 64, "files", "weights.safetensors", "sha256")),
                     "weights.safetensors does not match its checksum in"),
        "missing metrics key": (edit_json(pop("metrics", "matrix")), "lacks 'matrix'"),
        "wrong matrix shape": (edit_json(lambda d: d["metrics"]["matrix"].pop()),
                               "expected (3, 3)"),
        "text in matrix": (edit_json(put([["a", None, None]] * 3, "metrics", "matrix")),
                           "not a matrix of numbers"),
        "huge size claimed": (edit_json(put(2**40, "files", "weights.safetensors", "bytes")),
                              "more than its learner's"),
        "bad generation": (edit_json(put("../elsewhere", "generation")), "wrong form"),
    },
    W: {
        "truncated": (truncate, "run.json says"), "empty": (empty, "run.json says"),
        "flipped header": (flip(0.01), "checksum"), "flipped data": (flip(0.6), "checksum"),
        "NaN weights": (edit_tensors(nan_in("embeddings")), "non-finite"),
        "wrong shapes": (edit_tensors(lambda t: t.update(embeddings=t["embeddings"][:2])),
                         "expected (3, 2)"),
        "missing key": (edit_tensors(lambda t: t.pop("hnet.mlp.0.weight")), "does not fit"),
    },
    H: {
        "truncated": (truncate, "run.json says"), "flipped data": (flip(0.6), "checksum"),
        "NaN values": (edit_tensors(nan_in("task0.task_loss")), "non-finite"),
    },
}
CASES = [(f, name, *spec) for f, damages in RUN_DAMAGE.items() for name, spec in damages.items()]


@pytest.mark.parametrize("filename,name,damage,words", CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_damaged_run_file(runs, tmp_path, filename, name, damage, words):
    run = tmp_path / "run"
    shutil.copytree(runs / "hnet", run)
    damage(run / filename)
    before = snapshot(run)
    with pytest.raises(ValueError) as err:
        hnviz.load_run(run)
    message = str(err.value)
    assert str(run / filename) in message and words in message, message
    assert "Traceback" not in message
    assert snapshot(run) == before  # nothing written, not even to the damaged file
    dash = ForgettingDashboard(run)
    assert dash.figure is None and Path(filename).name in "".join(dash.errors)
    assert snapshot(run) == before


@pytest.mark.parametrize("damage,words", [
    (truncate, "run.json says"), (flip(0.7), "checksum"),
    (edit_tensors(nan_in("anchors")), "non-finite"),
    (edit_tensors(lambda t: t.update(theta=t["theta"][:-1])), "do not fit"),
])
def test_damaged_baseline_weights(runs, tmp_path, damage, words):
    run = tmp_path / "run"
    shutil.copytree(runs / "ewc", run)
    damage(run / W)
    before = snapshot(run)
    with pytest.raises(ValueError, match=words) as err:
        hnviz.load_run(run)
    assert "weights.safetensors" in str(err.value)
    assert snapshot(run) == before


CKPT_DAMAGE = {
    "json": {
        "truncated": (truncate, "cannot read"), "flipped bytes": (flip(0.5), "cannot read"),
        "missing key": (edit_json(pop("sha256")), "lacks sha256"),
        "unknown schema": (edit_json(put(7, "schema_version")), "schema version 7"),
        "wrong position": (edit_json(put(3, "step")), "not what its name says"),
        "wrong shapes": (edit_json(put(3, "config", "emb_dim")), "size mismatch"),
        "other tasks": (edit_json(lambda d: d["task_names"].reverse()), "do not match"),
        "bad RNG state": (edit_json(put("x", "numpy_rng", "pos")), "RNG states"),
        "NaN in JSON": (lambda p: p.write_text(p.read_text().replace('"beta": 0.005',
                                                                    '"beta": NaN')), "NaN"),
    },
    "safetensors": {
        "truncated": (truncate, "checksum"), "empty": (empty, "checksum"),
        "flipped data": (flip(0.5), "checksum"),
        "NaN weights": (edit_tensors(nan_in("task.emb"), "checkpoint"), "non-finite"),
        "wrong optimizer shape": (edit_tensors(
            lambda t: t.update({"opt.theta.0.exp_avg": t["opt.theta.0.exp_avg"][:1]}),
            "checkpoint"), "optimizer state"),
        "missing tensor": (edit_tensors(lambda t: t.pop("task.perm"), "checkpoint"),
                           "lacks tensor 'task.perm'"),
    },
}
CK_CASES = [(k, n, *spec) for k, d in CKPT_DAMAGE.items() for n, spec in d.items()]


@pytest.mark.parametrize("kind,name,damage,words", CK_CASES,
                         ids=[f"{c[0]}-{c[1]}" for c in CK_CASES])
def test_damaged_checkpoint(runs, toy, tmp_path, kind, name, damage, words):
    run = tmp_path / "run"
    shutil.copytree(runs / "ckpt", run)
    newest = list_checkpoints(run)[-1]
    assert (newest.tasks_done, newest.step) == (1, 15)
    target = newest.path if kind == "json" else newest.tensors_path
    damage(target)
    before = snapshot(run)
    with pytest.raises(ValueError) as err:
        hnviz.resume(run, progress=False)
    message = str(err.value)
    assert target.name in message and words in message, message
    assert snapshot(run) == before
    with pytest.raises(ValueError, match="holds an unfinished run"):
        hnviz.load_run(run)


def test_deleting_a_damaged_checkpoint_resumes_from_the_one_before(runs, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(runs / "ckpt", run)
    newest = list_checkpoints(run)[-1]
    flip(0.5)(newest.tensors_path)
    with pytest.raises(ValueError, match="delete .* to resume from the checkpoint before"):
        hnviz.resume(run, progress=False)
    newest.path.unlink()
    newest.tensors_path.unlink()
    learner = hnviz.resume(run, progress=False)
    assert learner.resumed_from_["step"] == 10 and learner.n_tasks_ == 3
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=30)
    plain = hnviz.HyperCL(cfg, progress=False).fit(hnviz.toy_regression())
    assert torch.equal(learner.embeddings_, plain.embeddings_)


V1_RUN = Path(__file__).parent / "data" / "runs_v0.1" / "toy_hnet"
V1_DAMAGE = {  # schema-1 runs (hnviz 0.1-0.2) are checked as before
    "metrics.json": [(truncate, "cannot read"), (edit_json(pop("matrix")), "lacks 'matrix'"),
                     (lambda p: p.write_text('{"m": ' * 100_000 + "1" + "}" * 100_000),
                      "nested too deeply")],
    "weights.safetensors": [(flip(0.6), "checksum"), (truncate, "checksum")],
    "run.json": [(edit_json(put(10**6, "target", "in_features")), "more than the")],
}
V1_CASES = [(f, *spec) for f, specs in V1_DAMAGE.items() for spec in specs]


@pytest.mark.parametrize("filename,damage,words", V1_CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(V1_CASES)])
def test_damaged_schema_1_run(tmp_path, filename, damage, words):
    run = tmp_path / "run"
    shutil.copytree(V1_RUN, run)
    damage(run / filename)
    before = snapshot(run)
    with pytest.raises(ValueError) as err:
        hnviz.load_run(run)
    assert str(run / filename) in str(err.value) and words in str(err.value), str(err.value)
    assert snapshot(run) == before
