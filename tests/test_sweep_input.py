"""Hostile sweep input: every bad value of a sweep file, of hnviz.sweep's arguments or of
--address is one ValueError line naming the value and the fix, before anything runs (no
test here starts Ray or trains)."""
import contextlib
import json
import socket
import sys
import threading
import time
import types

import pytest

import hnviz
from hnviz.experiments.sweep_spec import expand, load_spec

TOY = {"benchmark": "toy_regression", "methods": ["hnet"], "seeds": 2,
       "space": {"beta": [0.001, 0.05]}, "fixed": {"n_steps": 30}}


@pytest.fixture(autouse=True)
def no_ray(monkeypatch):
    """`import ray` fails: a check that came too late would say "sweeps need Ray"."""
    monkeypatch.setitem(sys.modules, "ray", None)


def sweep_cli(tmp_path, capsys, name, text, *extra):
    """`python -m hnviz sweep` on a sweep file holding ``text``: its exit code and stderr,
    checked to be one to three lines without a traceback."""
    from hnviz.cli.parser import main

    path = tmp_path / name
    path.write_text(text)
    capsys.readouterr()
    rc = main(["sweep", str(path), "--out", str(tmp_path / "s"), "--no-progress", *extra])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert rc == 2, err
    assert 1 <= len(lines) <= 3 and lines[0].startswith("hnviz: error: "), err
    assert "Traceback" not in err
    return err


def json_spec(**change):
    return json.dumps({"benchmark": "toy_regression", "fixed": {"n_steps": 5}, **change})


# ------------------------------------------------------------------ 1. values by type
SEEDS = "seeds must be an integer >= 1 and <= 1000 (seeds 0..n-1) or a list of"
FIX = "e.g. seeds: 3 or seeds: [0, 1, 2]"


@pytest.mark.parametrize("name,text,shown", [
    ("float.json", '{"benchmark": "toy_regression", "seeds": 1e9}', "got 1000000000.0"),
    ("two.json", '{"benchmark": "toy_regression", "seeds": 2.0}', "got 2.0"),
    ("null.json", '{"benchmark": "toy_regression", "seeds": null}', "got None"),
    ("text.json", '{"benchmark": "toy_regression", "seeds": "12"}', "got '12'"),
    ("bool.json", '{"benchmark": "toy_regression", "seeds": true}', "got True"),
    ("yaml11.yaml", "benchmark: toy_regression\nseeds: 1e9\n", "got '1e9'"),
    ("empty.yaml", "benchmark: toy_regression\nseeds:\n", "got None"),
    ("set.yaml", "benchmark: toy_regression\nseeds: !!set {1, 2}\n", "a set"),
    ("element.json", '{"benchmark": "toy_regression", "seeds": [0, "1"]}', "got [0, '1']"),
    ("negative.json", '{"benchmark": "toy_regression", "seeds": [-1]}', "got [-1]"),
    ("huge.json", '{"benchmark": "toy_regression", "seeds": [99999999999999999999]}',
     "got [99999999999999999999]"),
])
def test_seeds_of_the_wrong_type_are_one_line(tmp_path, capsys, name, text, shown):
    err = sweep_cli(tmp_path, capsys, name, text)
    assert (SEEDS in err and FIX in err or "set" in shown) and shown in err, err


@pytest.mark.parametrize("seeds", [1e9, 2.0, None, "12", "1e9", True, {"a": 1}, [0, 1.5]])
def test_library_seeds_are_checked_by_type(tmp_path, seeds):
    with pytest.raises(ValueError, match="seeds must be an integer >= 1 and <= 1000"):
        expand({**TOY, "seeds": seeds})
    with pytest.raises(ValueError, match="seeds must be an integer >= 1 and <= 1000"):
        hnviz.sweep(out=tmp_path, progress=False, **{**TOY, "seeds": seeds})


@pytest.mark.parametrize("change,match", [
    ({"methods": 5}, "methods must be a method name or a list of them, got 5"),
    ({"methods": None}, "methods must be a method name or a list of them, got None"),
    ({"methods": {"hnet": 1}}, "methods must be a method name or a list of them"),
    ({"methods": "hnet,ewc"}, "unknown method 'hnet,ewc'"),
    ({"methods": []}, "no methods given"),
    ({"resources": "ab"}, "resources must be a mapping .*cpu.*gpu.*got 'ab'"),
    ({"resources": None}, "resources must be a mapping"),
    ({"resources": {"cpu": "1"}}, "resources.cpu must be a finite number > 0"),
    ({"resources": {"cpu": 10**6}}, "resources.cpu must be a finite number > 0 and <= 4096"),
    ({"resources": {"gpu": 1.5}}, "resources.gpu = 1.5: above 1, a whole number"),
    ({"resources": {"cpu": 0.00001}}, "resources.cpu = 1e-05"),
    ({"search": "random", "space": {"beta": {"choice": "ab"}}},
     "space.beta: choice needs a non-empty list of values, got 'ab'"),
    ({"search": "random", "space": {"beta": {"choice": []}}}, "choice needs a non-empty list"),
    ({"search": "random", "space": {"beta": {"choice": 5}}}, "choice needs a non-empty list"),
    ({"search": "random", "space": {"emb_dim": {"randint": [1, 10**30]}}},
     "space.emb_dim high must be an integer"),
    ({"search": "random", "sample_seed": 2**40, "space": {"beta": [0.1]}},
     "sample_seed must be an integer >= 0 and <= 4294967295"),
    ({"search": "random", "num_samples": 2.0, "space": {"beta": [0.1]}},
     "num_samples must be an integer"),
    ({"space": []}, "space must be a mapping of config field -> values"),
    ({"space": "beta"}, "space must be a mapping"),
    ({"space": {1: [2], "beta": [0.1]}}, "space: the key 1 is not text"),
    ({"fixed": {"lr": {1, 2}}}, "fixed.lr is a set"),
])
def test_each_setting_is_checked_by_type(change, match):
    with pytest.raises(ValueError, match=match):
        expand({**TOY, **change})


def test_a_method_name_alone_is_one_method():
    assert {t.method for t in expand({**TOY, "methods": "hnet"})} == {"hnet"}
    assert {t.method for t in expand({**TOY, "methods": ("hnet", "ewc")})} == {"hnet", "ewc"}


@pytest.mark.parametrize("name,text,words", [
    ("methods.json", json_spec(methods={"hnet": 1}), "methods must be a method name"),
    ("resources.json", json_spec(resources="ab"), "resources must be a mapping"),
    ("date.yaml", "benchmark: toy_regression\nfixed: {lr: 2020-01-01}\n",
     "fixed.lr is a date (2020-01-01)"),
    ("options.yaml", "benchmark: toy_regression\nbenchmark_options: {seed: 2020-01-01}\n",
     "benchmark_options.seed is a date"),
    ("keys.yaml", "benchmark: toy_regression\n1: 2\ncolour: 3\n",
     "the sweep spec: the key 1 is not text"),
    ("out.json", json_spec(out="/tmp/elsewhere"), "unknown sweep setting(s) ['out']"),
    ("progress.json", json_spec(progress=False), "unknown sweep setting(s) ['progress']"),
    ("space.json", json_spec(space=[]), "space must be a mapping"),
    ("deep.yaml", "benchmark: toy_regression\nfixed: " + "[" * 50_000 + "]" * 50_000 + "\n",
     "nested more than"),
    ("deepmap.yaml", "a: " + "{a: " * 30_000 + "1" + "}" * 30_000 + "\n", "nested more than"),
    ("deep.json", '{"fixed": {"lr": ' + "[" * 500 + "]" * 500 + "}}", "nested more than"),
])
def test_sweep_files_are_checked_by_type(tmp_path, capsys, name, text, words):
    start = time.perf_counter()
    err = sweep_cli(tmp_path, capsys, name, text)
    assert words in err, err
    assert time.perf_counter() - start < 5


# ------------------------------------------------------------------ 2. duplicates
def test_duplicate_seeds_are_refused(tmp_path, capsys):
    """seeds [0, 0, 0] ran three identical trials into one directory ("± 0.0000")."""
    err = sweep_cli(tmp_path, capsys, "dup.json", json_spec(seeds=[0, 0, 0]))
    assert "seeds [0, 0, 0] repeat seed 0" in err and "distinct" in err, err
    with pytest.raises(ValueError, match="seeds \\[1, 2, 1\\] repeat seed 1"):
        hnviz.sweep(out=tmp_path, progress=False, **{**TOY, "seeds": [1, 2, 1]})


@pytest.mark.parametrize("change,match", [
    ({"methods": ["hnet", "ewc", "hnet"]}, "methods \\['hnet', 'ewc', 'hnet'\\] repeat 'hnet'"),
    ({"space": {"beta": [0.1, 0.2, 0.1]}}, "space.beta \\[0.1, 0.2, 0.1\\] repeats 0.1"),
    ({"space": {"lr": [1, 1.0]}}, "space.lr \\[1, 1.0\\] repeats 1.0"),
    ({"space": {"hnet_hidden": [[4, 4], [4, 4]]}}, "repeats \\[4, 4\\]"),
    ({"space": {"reg_subset": [None, 2, None]}},
     "space.reg_subset \\[None, 2, None\\] repeats None"),
    ({"search": "points", "space": [{"beta": 0.1}, {"beta": 0.1}]},
     "space lists the point {'beta': 0.1} twice"),
])
def test_duplicate_methods_and_values_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        expand({**TOY, **change})


def test_repeated_random_draws_and_ignored_fields_are_not_duplicates():
    """A method that ignores a swept field, or a random search drawing a point twice,
    gets one trial per distinct point (not an error)."""
    trials = expand({**TOY, "methods": ["hnet", "ewc"], "seeds": 1,
                     "space": {"beta": [0.1, 0.2]}})
    assert [t.method for t in trials] == ["hnet", "hnet", "ewc"]
    trials = expand({**TOY, "seeds": 1, "search": "random", "num_samples": 6,
                     "space": {"beta": {"choice": [0.1, 0.2]}}})
    assert len(trials) == 2


# ------------------------------------------------------------------ 3. duplicate keys
@pytest.mark.parametrize("name,text,words", [
    ("top.yaml", "benchmark: toy_regression\nseeds: 1\nseeds: 2\n",
     "key 'seeds' appears twice in one mapping (lines 2 and 3)"),
    ("nested.yaml", "benchmark: toy_regression\nspace:\n  beta: [0.1]\n  lr: [0.1]\n"
     "  beta: [0.2]\n", "key 'beta' appears twice in one mapping (lines 3 and 5)"),
    ("flow.yaml", "benchmark: toy_regression\nfixed: {n_steps: 5, n_steps: 6}\n",
     "key 'n_steps' appears twice in one mapping (lines 2 and 2)"),
    ("deeper.yaml", "benchmark: toy_regression\nsearch: points\nspace:\n- {beta: 0.1}\n"
     "- beta: 0.2\n  beta: 0.3\n", "key 'beta' appears twice in one mapping (lines 5 and 6)"),
    ("top.json", '{"benchmark": "toy_regression", "seeds": 1, "seeds": 2}',
     "key 'seeds' appears twice in one mapping"),
    ("nested.json", '{"benchmark": "toy_regression", "fixed": {"lr": 0.1, "lr": 0.2}}',
     "key 'lr' appears twice in one mapping"),
])
def test_duplicate_keys_are_refused(tmp_path, capsys, name, text, words):
    err = sweep_cli(tmp_path, capsys, name, text)
    assert words in err and "keep one" in err, err


def test_sweep_files_still_load_plain_yaml_and_json(tmp_path):
    """The stricter loaders read what they read before (merge keys and all)."""
    (tmp_path / "a.yaml").write_text("benchmark: toy_regression\nseeds: [0, 1]\n"
                                     "fixed: {<<: {n_steps: 5}, lr: 0.1}\n")
    assert load_spec(tmp_path / "a.yaml") == {"benchmark": "toy_regression", "seeds": [0, 1],
                                              "fixed": {"n_steps": 5, "lr": 0.1}}
    (tmp_path / "a.json").write_text('{"benchmark": "toy_regression", "fixed": {"lr": 0.1}}')
    assert load_spec(tmp_path / "a.json") == {"benchmark": "toy_regression",
                                              "fixed": {"lr": 0.1}}


# ------------------------------------------------------------------ 4. address and run numbers
ACCEPTED = "auto, HOST:PORT or ray://HOST:PORT"


@pytest.mark.parametrize("address", ["bogus:99999", "", "bogus", "host:0", "ho st:10001",
                                     "http://host:10001", "ray://", ":6379", "host:-1",
                                     "host:6379/x", "auto ", 6379])
def test_malformed_addresses_are_refused_before_ray(tmp_path, capsys, address):
    start = time.perf_counter()
    with pytest.raises(ValueError, match=f"address {address!r}.*{ACCEPTED}"):
        hnviz.sweep(out=tmp_path / "lib", progress=False, address=address, **TOY)
    if isinstance(address, str):
        err = sweep_cli(tmp_path, capsys, "toy.json", json_spec(), "--address", address)
        assert f"address {address!r}" in err and ACCEPTED in err, err
    assert time.perf_counter() - start < 5


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("scheme", ["", "ray://"])
def test_an_unreachable_cluster_is_one_line_quickly(tmp_path, capsys, scheme):
    """--address bogus:99999 hung with Ray's warnings; a port nothing listens on is
    named at once, before Ray is imported (the fixture makes `import ray` fail)."""
    address = f"{scheme}127.0.0.1:{free_port()}"
    start = time.perf_counter()
    err = sweep_cli(tmp_path, capsys, "toy.json", json_spec(), "--address", address)
    assert f"cannot reach a Ray cluster at {address}" in err, err
    assert "ray start --head" in err and "leave out --address" in err
    assert time.perf_counter() - start < 8


@contextlib.contextmanager
def http2_server(answer: bool):
    """A server on 127.0.0.1 that accepts and, if ``answer``, sends the SETTINGS frame
    every HTTP/2 (gRPC) server opens with, as Ray's does; else it stays silent."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held = []

    def serve():
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)
            if answer:
                conn.sendall(bytes([0, 0, 0, 4, 0, 0, 0, 0, 0]))
    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in held:
            conn.close()


def test_a_port_that_accepts_and_stays_silent_is_not_a_cluster(tmp_path, capsys):
    """Probe: --address to a port that accepts connections but never answers hung for
    ever (Ray retried with its warnings every 40 s)."""
    with http2_server(answer=False) as address:
        start = time.perf_counter()
        err = sweep_cli(tmp_path, capsys, "toy.json", json_spec(), "--address", address)
    assert f"cannot reach a Ray cluster at {address} (no answer within 5 s)" in err, err
    assert time.perf_counter() - start < 8


def fake_ray(init):
    """A stand-in for the ray module: records ray.init's keyword arguments."""
    calls = []

    def record(**kw):
        calls.append(kw)
        init(**kw)
    return types.SimpleNamespace(is_initialized=lambda: False, init=record), calls


def test_start_ray_checks_the_address_then_joins(monkeypatch):
    """A reachable HOST:PORT reaches ray.init; an unreachable one never does; ray.init's
    own failure (e.g. auto without a cluster) is one line naming the address."""
    from hnviz.experiments.sweep_ray import _start_ray

    def no_cluster(**kw):
        raise ConnectionError("Could not find any running Ray instance.\nPlease specify...")
    ray, calls = fake_ray(no_cluster)
    monkeypatch.setitem(sys.modules, "ray", ray)
    with http2_server(answer=True) as address:
        with pytest.raises(ValueError) as e:
            _start_ray(address, None)
    assert calls and calls[0]["address"] == address
    assert str(e.value).startswith(f"cannot connect to the Ray cluster at {address}: Could not "
                                   "find any running Ray instance; start one with")
    assert len(str(e.value).splitlines()) == 1 and "ray start --head" in str(e.value)
    calls.clear()
    closed = f"127.0.0.1:{free_port()}"
    with pytest.raises(ValueError, match=f"cannot reach a Ray cluster at {closed} "):
        _start_ray(closed, None)
    assert not calls
    with pytest.raises(ValueError, match="cannot connect to the Ray cluster at auto: Could not"):
        _start_ray("auto", None)


@pytest.mark.parametrize("kw,match", [
    ({"max_concurrent": 0}, "max_concurrent must be an integer >= 1 and <= 10000, got 0"),
    ({"max_concurrent": 2.5}, "max_concurrent must be an integer"),
    ({"max_concurrent": "3"}, "max_concurrent must be an integer"),
    ({"num_cpus": 0}, "num_cpus must be an integer >= 1 and <= 4096, got 0"),
    ({"num_cpus": 5000}, "num_cpus must be an integer >= 1 and <= 4096"),
    ({"num_cpus": "4"}, "num_cpus must be an integer"),
])
def test_run_numbers_are_checked(tmp_path, capsys, kw, match):
    with pytest.raises(ValueError, match=match):
        hnviz.sweep(out=tmp_path, progress=False, **TOY, **kw)
    flag, value = next(iter(kw.items()))
    if isinstance(value, int):
        err = sweep_cli(tmp_path, capsys, "toy.json", json_spec(),
                        f"--{flag.replace('_', '-')}", str(value))
        assert match.split(",")[0] in err, err
