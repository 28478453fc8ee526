"""Sweeps on Ray Tune: trial expansion, the embedded local Ray, a real `ray start`
cluster through --address, and an interrupted sweep that finishes only what is missing."""
import ipaddress
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import hnviz
from hnviz.experiments.compare import make_learner
from hnviz.experiments.sweep_spec import check_spec, expand
from hnviz.experiments.sweep_ray import LOCAL_RAY_ENV
from hnviz.experiments.sweep_trials import run_trial
from hnviz.experiments.sweeps import summarize

if os.environ.get("CI"):  # make test installs the sweep extra: missing Ray fails there
    import ray  # noqa: F401
else:
    ray = pytest.importorskip("ray", reason="sweeps need Ray: pip install -e '.[sweep]'")

TOY = {"benchmark": "toy_regression", "methods": ["hnet"], "seeds": 2,
       "space": {"beta": [0.001, 0.05]}, "fixed": {"n_steps": 30}}


def test_grid_and_random_expansion():
    trials = expand({**TOY, "methods": ["hnet", "ewc"], "space": {"lr": [0.01, 0.02]}})
    assert len(trials) == 2 * 2 * 2  # methods x points x seeds
    assert len({t.trial_id for t in trials}) == 8
    spec = {**TOY, "search": "random", "num_samples": 5,
            "space": {"beta": {"loguniform": [0.001, 0.1]}, "lr": {"choice": [0.01, 0.02]},
                      "emb_dim": {"randint": [2, 4]}}}
    a, b = expand(spec), expand(spec)
    assert [t.params for t in a] == [t.params for t in b]  # seeded: reruns find the same
    for t in a:
        assert 0.001 <= t.params["beta"] <= 0.1 and t.params["lr"] in (0.01, 0.02)
        assert t.params["emb_dim"] in (2, 3, 4) and t.params["n_steps"] == 30
    assert len({json.dumps(t.params, sort_keys=True) for t in a}) == 5
    # the same point on another benchmark setting is another trial (its own run directory)
    other = expand({**TOY, "benchmark": "permuted_digits", "benchmark_options": {"n_tasks": 3}})
    again = expand({**TOY, "benchmark": "permuted_digits", "benchmark_options": {"n_tasks": 4}})
    assert [t.params for t in other] == [t.params for t in again]
    assert not {t.trial_id for t in other} & {t.trial_id for t in again}


@pytest.mark.parametrize("change,match", [
    ({"space": {"betta": [1]}}, "unknown config field"),
    ({"space": {"beta": [-1.0]}}, "beta must be a finite number >= 0"),
    ({"space": {"beta": {"uniform": [0, 1]}}}, "must be a list of values"),
    ({"benchmark": "cifar"}, "unknown benchmark"),
    ({"methods": ["hnet", "lwf"]}, "unknown method 'lwf'"),
    ({"resources": {"tpu": 1}}, "resources takes cpu and gpu"),
    ({"colour": 1}, "unknown sweep setting"),
    ({"benchmark_options": {"n_tasks": 5}}, "unknown benchmark_options \\['n_tasks'\\] for toy"),
    ({"seeds": 100_000_000}, "seeds must be an integer >= 1 and <= 1000"),
    ({"seeds": list(range(2000))}, "a list of 1 to 1000 distinct integers"),
    ({"space": {"beta": [i / 1e3 for i in range(200)], "lr": [i / 1e4 for i in range(1, 201)]}},
     "would have 80,000 trials"),
    ({"search": "random", "num_samples": 10**9}, "num_samples must be an integer"),
])
def test_bad_specs_fail_before_anything_runs(change, match):
    with pytest.raises(ValueError, match=match):
        expand({**TOY, **change})


def test_sweep_files_take_plain_values_only(tmp_path):
    """A YAML alias bomb (a few hundred bytes that expand to gigabytes) is refused from
    its events, before anything expands; file names match in any case; size bounded."""
    import resource
    import time

    from hnviz.experiments.sweep_spec import load_spec

    bomb = 'a: &a ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
        f"{c}: &{c} [*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p},*{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi")) + "space: {beta: *i}\n"
    (tmp_path / "bomb.yaml").write_text(bomb)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"uses a YAML alias \(\*a\)"):
        load_spec(tmp_path / "bomb.yaml")
    assert time.perf_counter() - start < 1 and len(bomb) < 600
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024
    (tmp_path / "spec.YAML").write_text("benchmark: toy_regression\nseeds: 2\n")
    assert load_spec(tmp_path / "spec.YAML") == {"benchmark": "toy_regression", "seeds": 2}
    (tmp_path / "spec.txt").write_text("{}")
    with pytest.raises(ValueError, match="ends in .yaml, .yml or .json"):
        load_spec(tmp_path / "spec.txt")
    (tmp_path / "big.json").write_text("[" + "0," * 2**20 + "0]")
    with pytest.raises(ValueError, match="a sweep file is at most"):
        load_spec(tmp_path / "big.json")


def test_trials_that_cannot_fit_the_local_ray_are_refused(tmp_path):
    with pytest.raises(ValueError, match="resources.cpu = 1000 per trial, but the local Ray"):
        hnviz.sweep(out=tmp_path, progress=False, **{**TOY, "resources": {"cpu": 1000}})
    with pytest.raises(ValueError, match="resources.gpu = 1, but this machine has no GPU"):
        hnviz.sweep(out=tmp_path, progress=False, **{**TOY, "resources": {"gpu": 1}})


def test_summary_groups_and_best():
    rows = [{"trial": f"t{i}", "method": "hnet", "seed": i % 2, "point": f"beta={beta}",
             "metric": "accuracy", "average_final": acc, "during": acc, "bwt": 0.0,
             "forgetting": 0.0, "wall_seconds": 1.0, "trainable_params": 10}
            for i, (beta, acc) in enumerate([(0.1, 80.0), (0.1, 82.0), (0.5, 90.0), (0.5, 94.0)])]
    groups, best = summarize(rows)
    assert [g["average_final"]["mean"] for g in groups] == [81.0, 92.0]
    assert groups[1]["average_final"]["std"] == pytest.approx(2.0)
    assert groups[1]["average_final"]["values"] == [90.0, 94.0]
    assert "task_inference" not in groups[0]  # no trial measured it
    assert best["hnet"]["point"] == "beta=0.5"


def test_methods_take_their_own_fields():
    """A baseline ignores beta, an HNET ignores ewc_lambda: one trial per distinct point
    of each method's own fields, and the field reaches the learner's config."""
    spec = {**TOY, "methods": ["hnet", "ewc"], "seeds": 1,
            "space": {"beta": [0.001, 0.01], "ewc_lambda": [1.0, 10.0]}}
    trials = expand(spec)
    by_method = {m: [t.params for t in trials if t.method == m] for m in ("hnet", "ewc")}
    assert by_method["hnet"] == [{"n_steps": 30, "beta": 0.001}, {"n_steps": 30, "beta": 0.01}]
    assert by_method["ewc"] == [{"n_steps": 30, "ewc_lambda": 1.0},
                                {"n_steps": 30, "ewc_lambda": 10.0}]
    learner = make_learner("ewc", "toy_regression", "cl1", 0, False, ewc_lambda=10.0, beta=0.1)
    assert learner.config.ewc_lambda == 10.0 and learner.config.n_steps == 4001


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal without CUDA")
def test_a_trial_given_a_gpu_trains_on_cuda(tmp_path, monkeypatch):
    """A trial with resources.gpu > 0 asks for CUDA (here, without one: the device's
    one-line refusal names it); with gpu 0 it trains on the CPU."""
    monkeypatch.delenv("HNVIZ_DEVICE", raising=False)
    spec = check_spec({**TOY, "seeds": [0], "space": {"beta": [0.05]}})
    trial = expand(spec)[0].to_dict()
    with pytest.raises(ValueError, match="device 'cuda': this machine's torch sees 0 CUDA"):
        run_trial(trial, {**spec, "resources": {"cpu": 1, "gpu": 0.5}}, tmp_path / "gpu")
    row = run_trial(trial, spec, tmp_path / "cpu")
    plain = hnviz.HyperCL(hnviz.HyperCLConfig.preset("toy_regression", beta=0.05, n_steps=30),
                          random_state=0, progress=False, device="cpu").fit(hnviz.toy_regression())
    assert row["average_final"] == plain.summary()["average_final"]
    assert os.environ.get("HNVIZ_DEVICE") is None  # put back


def test_trials_without_ray_equal_plain_runs_and_load_again(tmp_path):
    """run_trial trains exactly the configured learner (same numbers as a plain fit); a
    sweep whose trials are all finished needs no Ray and load_sweep reads it back."""
    spec = {**TOY, "methods": ["hnet", "si"], "seeds": [1], "space": {"beta": [0.05]}}
    trials = expand(spec)
    rows = [run_trial(t.to_dict(), check_spec(spec), tmp_path) for t in trials]
    plain = hnviz.HyperCL(hnviz.HyperCLConfig.preset("toy_regression", beta=0.05, n_steps=30),
                          random_state=1, progress=False).fit(hnviz.toy_regression())
    assert rows[0]["average_final"] == plain.summary()["average_final"]
    assert rows[0]["compression_ratio"] == pytest.approx(
        (plain.hnet_.num_params + 3 * plain.config.emb_dim) / plain.target_.num_params)
    assert rows[1]["method"] == "si" and "compression_ratio" not in rows[1]
    assert not list(tmp_path.glob("trials/*/checkpoints"))  # removed once saved
    result = hnviz.sweep(out=tmp_path, progress=False, **spec)  # nothing left to run
    assert result.ran == 0 and [r["average_final"] for r in result.rows] == \
        [r["average_final"] for r in rows]
    assert [r["point"] for r in result.rows] == ["beta=0.05", "-"]  # si has no beta
    again = hnviz.load_sweep(tmp_path)
    assert again.rows == result.rows and again.groups == result.groups
    assert set(again.runs()) == {"hnet beta=0.05", "si -"}
    assert again.runs(best_only=False, seed=1)["si -"] == rows[1]["run_dir"]
    with pytest.raises(ValueError, match="seed 5 is not in this sweep"):
        again.runs(seed=5)


def test_compression_plot_shows_each_group():
    """One point per HNET group at its mean ratio and accuracy, error bars = std."""
    import matplotlib

    matplotlib.use("Agg")
    from hnviz.results.plots import plot_compression_sweep

    import matplotlib.pyplot as plt

    groups = [{"method": "hnet", "point": f"w={w}", "seeds": [0, 1], "metric": "accuracy",
               "compression_ratio": {"mean": r, "std": 0.0},
               "average_final": {"mean": a, "std": sd}, "during": {"mean": a + 2, "std": 0.0},
               "forgetting": {"mean": f, "std": 0.0}}
              for w, r, a, sd, f in [(64, 1.4, 95.0, 0.5, 0.5), (4, 0.2, 80.0, 2.0, 3.0),
                                     (16, 0.6, 92.0, 1.0, 1.0)]]
    groups += [{"method": "ewc", "point": f"lr={lr}", "seeds": [0, 1], "metric": "accuracy",
                "average_final": {"mean": acc, "std": 0.0}, "forgetting": {"mean": f, "std": 0.0}}
               for lr, acc, f in [(0.001, 85.0, 9.0), (0.01, 70.0, 20.0)]]
    _, (ax, ax2) = plt.subplots(1, 2)
    assert plot_compression_sweep(groups, ax, ax2) is ax
    line = ax.lines[0]
    assert list(line.get_xdata()) == [0.2, 0.6, 1.4] and list(line.get_ydata()) == [80.0, 92.0, 95.0]
    bars = ax.collections[0].get_segments()  # error bars, in the same order
    assert [tuple(b[:, 1]) for b in bars] == [(78.0, 82.0), (91.0, 93.0), (94.5, 95.5)]
    curves = {c.get_label(): c.lines[0] for c in ax.containers}  # errorbar containers
    assert list(curves["HNET during"].get_ydata()) == [82.0, 94.0, 97.0]
    lines = {l.get_label(): l for l in ax.lines}
    assert list(lines["ewc final"].get_ydata()) == [85.0, 85.0]  # EWC at its best point
    assert list(ax2.containers[0].lines[0].get_ydata()) == [3.0, 1.0, 0.5]
    lines2 = {l.get_label(): l for l in ax2.lines}
    assert list(lines2["ewc"].get_ydata()) == [9.0, 9.0]
    with pytest.raises(ValueError, match="no HNET groups"):
        plot_compression_sweep(groups[3:])
    plt.close("all")


def test_load_sweep_names_missing_trials(tmp_path):
    spec = {**TOY, "seeds": 1, "space": {"beta": [0.05]}}
    run_trial(expand(spec)[0].to_dict(), check_spec(spec), tmp_path)
    hnviz.sweep(out=tmp_path, progress=False, **spec)
    shutil.rmtree(next(tmp_path.glob("trials/*")))
    with pytest.raises(ValueError, match="misses 1 finished trial.*rerun the sweep"):
        hnviz.load_sweep(tmp_path)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_sweep(spec, out, *extra, wait=True, env=None):
    path = Path(out).with_suffix(".json")
    path.write_text(json.dumps(spec))
    cmd = [sys.executable, "-m", "hnviz", "sweep", str(path), "--out", str(out), *extra]
    if not wait:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, env=env)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)


def check_table(out, n_trials):
    """results.json agrees with every trial's own metrics (run.json); groups are right."""
    res = json.loads((Path(out) / "results.json").read_text())
    assert len(res["trials"]) == n_trials
    for row in res["trials"]:
        metrics = json.loads((Path(row["run_dir"]) / "run.json").read_text())["metrics"]
        assert row["average_final"] == metrics["average_final"]
        assert row["seed"] == json.loads((Path(row["run_dir"]) / "trial.json").read_text())["seed"]
    for g in res["groups"]:
        vals = [r["average_final"] for r in res["trials"]
                if r["method"] == g["method"] and r["point"] == g["point"]]
        assert g["average_final"]["mean"] == pytest.approx(np.mean(vals))
        assert g["average_final"]["std"] == pytest.approx(np.std(vals))
    best = min(res["groups"], key=lambda g: g["average_final"]["mean"])  # MSE: lower wins
    assert res["best"]["hnet"] == best["point"]
    assert "**best**" in (Path(out) / "table.md").read_text()
    return res


def ray_cli(*args, env, worker=False):
    """`ray ARGS` (``worker``: through tests/ray_worker_node.py, which adds a node to a
    loopback-only cluster)."""
    cmd = [sys.executable, str(Path(__file__).with_name("ray_worker_node.py"))] if worker \
        else [str(Path(sys.executable).with_name("ray"))]
    res = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 0, f"ray {' '.join(args)}:\n{res.stdout[-2000:]}{res.stderr[-2000:]}"


def loopback(ip):
    addr = ipaddress.ip_address(ip)
    return (getattr(addr, "ipv4_mapped", None) or addr).is_loopback  # ::ffff:127.0.0.1 too


def ray_listeners():
    """(process name, address) of every listening TCP socket of a Ray process."""
    import psutil

    pids = {p.pid: p.info["name"] for p in psutil.process_iter(["name", "cmdline"])
            if p.info["name"] in ("gcs_server", "raylet")
            or any("site-packages/ray/" in a for a in p.info["cmdline"] or [])}
    return [(pids[c.pid], c.laddr.ip) for c in psutil.net_connections("tcp")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


@pytest.mark.slow
def test_sweep_on_a_ray_cluster_through_address(tmp_path, ray_exclusive):
    """`ray start --head` on 127.0.0.1 plus a worker node (token authentication, every
    Ray server listening on 127.0.0.1 only), a 4-trial sweep through --address: all
    trials finish, the table is right."""
    port = free_port()
    env = {**os.environ, **LOCAL_RAY_ENV, "RAY_AUTH_MODE": "token",
           "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    try:
        store = ["--object-store-memory", str(200 * 2**20)]
        ray_cli("start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port),
                "--num-cpus", "1", "--include-dashboard", "false", "--disable-usage-stats",
                *store, env=env)
        ray_cli("--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1",
                "--num-cpus", "1", *store, env=env, worker=True)
        listeners = ray_listeners()
        assert [name for name, _ in listeners].count("raylet") >= 2  # two nodes
        assert all(loopback(ip) for _, ip in listeners), listeners
        res = run_sweep(TOY, tmp_path / "sweep", "--address", f"127.0.0.1:{port}", env=env)
        assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
        assert "sweep: 4 trials, 0 finished already, ran 4" in res.stdout
        res = check_table(tmp_path / "sweep", 4)
        nodes = {json.loads((Path(r["run_dir"]) / "trial.json").read_text())["ray_node"]
                 for r in res["trials"]}
        assert len(nodes) == 2  # one CPU per node, two trials at once: both nodes worked
    finally:
        ray_cli("stop", "--force", env=env)


@pytest.mark.slow
def test_interrupted_sweep_runs_only_missing_trials(tmp_path, ray_exclusive):
    """SIGKILL the sweep (driver and its local Ray) after its first finished trial; the
    rerun trains only the others and leaves the finished ones untouched."""
    spec = {**TOY, "space": {"beta": [0.001, 0.01, 0.05]}, "fixed": {"n_steps": 150}}
    out = tmp_path / "sweep"
    proc = run_sweep(spec, out, "--max-concurrent", "1", wait=False)
    deadline = time.monotonic() + 600
    while not list(out.glob("trials/*/trial.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.1)
    listeners = ray_listeners()  # the embedded Ray listens on the loopback interface only
    assert listeners and all(loopback(ip) for _, ip in listeners), listeners
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=60)
    # Ray's processes outlive the driver (they run in sessions of their own): a trial in
    # flight could still finish, so stop them all before counting what is done
    subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"],
                   capture_output=True, timeout=120)
    done = {p.parent: p.parent.joinpath("run.json").stat().st_mtime_ns
            for p in out.glob("trials/*/trial.json")}
    assert 1 <= len(done) < 6
    res = run_sweep(spec, out)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert f"6 trials, {len(done)} finished already, ran {6 - len(done)}" in res.stdout
    for d, mtime in done.items():
        assert d.joinpath("run.json").stat().st_mtime_ns == mtime  # not trained again
    res = check_table(out, 6)
    # the sweep's runs open in the ForgettingDashboard
    from hnviz.widgets import ForgettingDashboard

    runs = {r["trial"]: r["run_dir"] for r in res["trials"][:3]}
    assert ForgettingDashboard(runs).errors == []
    shutil.rmtree(out / "_ray", ignore_errors=True)


def test_listed_points_each_with_its_own_settings():
    """search: points runs exactly the listed points (per-width settings), each method
    with its own fields of each point."""
    spec = {**TOY, "methods": ["hnet", "ewc"], "seeds": 1, "search": "points",
            "space": [{"hnet_hidden": [4, 4], "lr": 0.01},
                      {"hnet_hidden": [8, 8], "lr": 0.02, "beta": 0.1}]}
    by_method = {}
    for t in expand(spec):
        by_method.setdefault(t.method, []).append(t.params)
    assert by_method["hnet"] == [{"n_steps": 30, "hnet_hidden": [4, 4], "lr": 0.01},
                                 {"n_steps": 30, "hnet_hidden": [8, 8], "lr": 0.02, "beta": 0.1}]
    assert by_method["ewc"] == [{"n_steps": 30, "lr": 0.01}, {"n_steps": 30, "lr": 0.02}]
    for space, match in (({"lr": [0.1]}, "must be a non-empty list of points"),
                         ([], "must be a non-empty list"),
                         ([{"n_steps": 5}], r"\['n_steps'\] both in space and fixed")):
        with pytest.raises(ValueError, match=match):
            expand({**spec, "space": space})


@pytest.mark.parametrize("name", sorted(p.name for p in
                                        (Path(__file__).parents[1] / "examples").glob("*.yaml")))
def test_example_sweep_files_expand(name):
    """Every sweep file in examples/ loads and builds each trial's config (nothing trains)."""
    from hnviz.experiments.sweep_spec import expand, load_spec

    spec = load_spec(Path(__file__).parents[1] / "examples" / name)
    trials = expand(spec)
    seeds = sorted({t.seed for t in trials})
    assert trials and len(trials) % len(seeds) == 0  # every point with every seed
    assert len({t.trial_id for t in trials}) == len(trials)  # distinct run directories
