"""The speed benchmark against hypnettorch: both libraries build the same step."""
import json
import os
import subprocess
import sys

import pytest
import torch

from hnviz.bench import step as bench

try:
    import hypnettorch  # noqa: F401
except ImportError:
    if os.environ.get("CI") == "true":  # make test installs the bench extra: never skip in CI
        raise
    pytest.skip("the reference needs hypnettorch: pip install -e '.[bench]'",
                allow_module_level=True)

SMALL = bench.BenchConfig(64, (20, 20), 10, (16, 16), 300, 4, 6, 32, 0.5, 1e-3, steps=1,
                          warmup=0)


@pytest.mark.parametrize("T", [0, 1, 7, 40])  # 40 tasks: the Gram form of the regularizer
def test_one_step_equals_hypnettorch(T, monkeypatch):
    """Same regularizer at step 0 and the same gradient of task loss + beta * reg for
    every parameter (hypnettorch's are mapped back to hnviz's names)."""
    monkeypatch.setitem(bench.CONFIGS, "tiny", SMALL)
    torch.manual_seed(0)
    step_a, reg_a, grads_a = bench._hnviz_step(SMALL, T)
    step_b, reg_b, grads_b = bench._hypnettorch_step(SMALL, T)
    if T:
        assert reg_a > 1e-3 and reg_a == pytest.approx(reg_b, rel=1e-5)
    step_a()
    step_b()
    ga, gb = grads_a(), grads_b()
    assert sorted(ga) == sorted(gb) and len(ga) == 8
    for name in ga:
        torch.testing.assert_close(ga[name], gb[name], rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.slow
def test_bench_command_prints_table_and_rows(tmp_path):
    out = tmp_path / "rows.json"
    res = subprocess.run([sys.executable, "-m", "hnviz", "bench", "--tasks", "0,3", "--steps",
                          "2", "--json", str(out)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "hypnettorch ms" in res.stdout and "grows" in res.stdout and "device cpu" in res.stdout
    rows = json.loads(out.read_text())["rows"]
    assert [r["T"] for r in rows] == [0, 3]
    assert rows[1]["reg0"] > 0 and all(r["ratio"] > 0 and r["hnviz_mib"] > 100 for r in rows)
    for args, message in [(["--tasks", "1,x"], "--tasks must be comma-separated integers"),
                          (["--config", "nope"], "unknown benchmark config 'nope'"),
                          (["--reg-subset", "0"], "reg_subset must be an integer >= 1"),
                          (["--device", "gpu"], "device='gpu' is not a device")]:
        bad = subprocess.run([sys.executable, "-m", "hnviz", "bench", *args],
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode == 2 and message in bad.stderr, (args, bad.stderr)


def test_subset_step_regularizes_k_of_the_earlier_tasks(monkeypatch):
    """reg_subset reaches both libraries' steps: k >= T is the full step exactly, k = 2 of
    7 changes hnviz's gradient (which subset: tests/test_regularizer.py checks loss(idx))."""
    monkeypatch.setitem(bench.CONFIGS, "tiny", SMALL)
    torch.manual_seed(0)
    full, _, g_full = bench._hnviz_step(SMALL, 7)
    sub, _, g_sub = bench._hnviz_step(SMALL, 7, reg_subset=2)
    ref, _, g_ref = bench._hypnettorch_step(SMALL, 7, reg_subset=2)
    every, _, g_every = bench._hnviz_step(SMALL, 7, reg_subset=7)
    full(), sub(), ref(), every()
    a, b, c = g_full(), g_sub(), g_ref()
    assert all(torch.equal(a[n], g) for n, g in g_every().items())
    assert not torch.allclose(a["mlp.0.weight"], b["mlp.0.weight"])
    assert all(torch.isfinite(g).all() for g in [*b.values(), *c.values()])


@pytest.mark.slow
def test_checkpoint_overhead_bench(tmp_path):
    """The overhead benchmark trains with and without checkpoints (identical results
    required) and prints the figures; tiny here, PermutedDigits-10 in docs/robustness.md."""
    res = subprocess.run([sys.executable, "-m", "hnviz", "bench-checkpoints", "--tasks", "3",
                          "--steps", "30", "--every", "10", "--dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "result identical with and without checkpoints: True" in res.stdout
    assert "writing 9 checkpoints" in res.stdout  # 3 after tasks, 2 within each task
    assert "overhead: writing checkpoints took" in res.stdout
    assert list(tmp_path.iterdir()) == []  # its temporary folder is gone


def test_nothing_in_hnviz_unpickles():
    """Run files and checkpoints are read with json and safetensors only."""
    import re
    from pathlib import Path

    import hnviz

    for path in Path(hnviz.__file__).parent.glob("*.py"):
        code = path.read_text()
        assert not re.search(r"\bimport pickle\b|torch\.load\(|np\.load\(|allow_pickle", code), path
