"""Run directories others can write to: every attack is set up first (a planted
symbolic link, a hard link, a finished run of someone else, a save that dies half-way),
then the fix is asserted: nothing outside the run is touched, the error names the path,
the old run stays loadable."""
import json
import os

import pytest
import torch

import hnviz
from hnviz.store.checkpoint import remove_checkpoints
from hnviz.experiments.experiment import train_into
from hnviz.store.runs import RunExistsError
from hnviz.io.safeio import SafeDir, UnsafePathError, read_json
from hnviz.core.train import Callback


@pytest.fixture
def victim(tmp_path):
    """A file of the user's that no attack may change."""
    path = tmp_path / "important.txt"
    path.write_text("precious")
    return path


def quick():
    return hnviz.HyperCL(hnviz.HyperCLConfig.preset("toy_regression", n_steps=5), progress=False)


def test_safedir_refuses_links_for_everything_it_does(tmp_path, victim):
    (tmp_path / "run").mkdir()
    os.symlink(victim, tmp_path / "run" / "f")
    os.symlink(tmp_path, tmp_path / "run" / "sub")
    with SafeDir(tmp_path / "run") as d:
        with pytest.raises(UnsafePathError, match="f is a symbolic link"):
            d.read("f", 100)
        with pytest.raises(UnsafePathError, match="sub is a symbolic link"):
            d.subdir("sub")
        d.write("f", "new")  # replaces the link itself
        d.remove_tree("sub")  # removes the link, not what it points to
        assert d.names() == ["f"] and d.read("f", 100) == b"new"
    assert victim.read_text() == "precious" and tmp_path.is_dir()
    os.symlink(tmp_path / "run", tmp_path / "link")
    with pytest.raises(UnsafePathError, match="link is a symbolic link"):
        SafeDir(tmp_path / "link")
    with SafeDir(tmp_path / "link", follow=True) as d:  # reading through a link you chose
        assert d.names() == ["f"]


@pytest.mark.parametrize("how", ["save_run", "train_into", "fit_checkpointed", "resume"])
def test_a_planted_lock_link_changes_nothing(tmp_path, victim, toy, how):
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(victim, run / ".lock")  # the attack: hnviz would truncate and write it
    learner = quick()
    with pytest.raises(UnsafePathError, match=r"\.lock is a symbolic link"):
        if how == "save_run":
            hnviz.save_run(learner.fit(toy), run)
        elif how == "train_into":
            train_into(learner, toy, run)
        elif how == "fit_checkpointed":
            hnviz.fit_checkpointed(learner, toy, run)
        else:
            hnviz.resume(run)
    assert victim.read_text() == "precious" and os.path.islink(run / ".lock")


def test_a_hard_linked_lock_is_refused(tmp_path, victim, toy):
    run = tmp_path / "run"
    run.mkdir()
    os.link(victim, run / ".lock")
    with pytest.raises(UnsafePathError, match="not a lock file hnviz made"):
        hnviz.save_run(quick().fit(toy), run)
    assert victim.read_text() == "precious"


class Stop(Exception):
    pass


class StopAt(Callback):
    def on_step(self, learner, task_id, step, logs):
        if (task_id, step) == (1, 2):
            raise Stop


def test_a_planted_checkpoints_link_deletes_nothing(tmp_path, toy):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in ("ckpt-00001-0000000.json", "ckpt-00001-0000000.safetensors", ".ckpt-x.tmp"):
        (elsewhere / name).write_text("someone's file")
    run = tmp_path / "run"
    run.mkdir()
    os.symlink(elsewhere, run / "checkpoints")  # the attack: hnviz would prune/delete there
    for attempt in (lambda: remove_checkpoints(run), lambda: hnviz.resume(run),
                    lambda: train_into(quick(), toy, run),
                    lambda: hnviz.fit_checkpointed(quick(), toy, run, every=2)):
        with pytest.raises(UnsafePathError, match="checkpoints is a symbolic link"):
            attempt()
    assert sorted(p.name for p in elsewhere.iterdir()) == [
        ".ckpt-x.tmp", "ckpt-00001-0000000.json", "ckpt-00001-0000000.safetensors"]
    assert all(p.read_text() == "someone's file" for p in elsewhere.iterdir())


def test_a_run_directory_that_is_a_link_is_not_written(tmp_path, victim, toy):
    (tmp_path / "theirs").mkdir()
    os.symlink(tmp_path / "theirs", tmp_path / "run")
    with pytest.raises(UnsafePathError, match="run is a symbolic link"):
        hnviz.save_run(quick().fit(toy), tmp_path / "run")
    assert list((tmp_path / "theirs").iterdir()) == []


def test_links_inside_a_saved_run_are_refused_when_loading(tmp_path, victim, toy):
    run = tmp_path / "run"
    hnviz.save_run(quick().fit(toy), run)
    gen = run / "gen-000001"
    (gen / "weights.safetensors").unlink()
    os.symlink(victim, gen / "weights.safetensors")
    with pytest.raises(ValueError, match="weights.safetensors is a symbolic link"):
        hnviz.load_run(run)
    os.rename(gen, tmp_path / "moved")
    os.symlink(tmp_path / "moved", gen)  # the generation itself a link
    with pytest.raises(ValueError, match="gen-000001 is a symbolic link"):
        hnviz.load_run(run)
    assert victim.read_text() == "precious"


# ------------------------------------------------------------ finished runs
def test_a_finished_run_is_not_overwritten_unasked(tmp_path, toy):
    run = tmp_path / "run"
    first = quick().fit(toy)
    hnviz.save_run(first, run, benchmark=toy.spec)
    before = {p: p.read_bytes() for p in run.rglob("*") if p.is_file()}
    digits = hnviz.permuted_digits(2)
    other = hnviz.HyperCL("permuted_digits", progress=False)
    with pytest.raises(RunExistsError, match="holds a finished run; pass overwrite=True"):
        train_into(other, digits, run)  # refused before training
    assert other.n_tasks_ == 0
    with pytest.raises(RunExistsError):
        hnviz.save_run(first, run)
    assert {p: p.read_bytes() for p in run.rglob("*") if p.is_file()} == before
    second = quick().fit(toy.tasks[:2])
    hnviz.save_run(second, run, benchmark=toy.spec, overwrite=True)
    assert hnviz.load_run(run).learner.n_tasks_ == 2
    assert sorted(p.name for p in run.iterdir()) == ["gen-000002", "run.json"]


def test_an_overwrite_that_dies_leaves_the_old_run_loadable(tmp_path, toy, monkeypatch):
    run = tmp_path / "run"
    hnviz.save_run(quick().fit(toy), run, benchmark=toy.spec)
    old = hnviz.load_run(run).learner
    original = SafeDir.write

    def die_at_the_commit(self, name, data):
        if name == "run.json":
            raise KeyboardInterrupt  # killed after the new tensors, before run.json
        original(self, name, data)
    monkeypatch.setattr(SafeDir, "write", die_at_the_commit)
    with pytest.raises(KeyboardInterrupt):
        hnviz.save_run(quick().fit(toy.tasks[:1]), run, overwrite=True)
    monkeypatch.undo()
    again = hnviz.load_run(run).learner  # the old run, whole
    assert again.n_tasks_ == 3 and torch.equal(again.embeddings_, old.embeddings_)
    hnviz.save_run(quick().fit(toy.tasks[:1]), run, overwrite=True)  # the next save tidies up
    assert sorted(p.name for p in run.iterdir()) == ["gen-000003", "run.json"]


def test_json_is_bounded_and_finite(tmp_path):
    (tmp_path / "big.json").write_text('{"a": "' + "x" * 2000 + '"}')
    with pytest.raises(ValueError, match="more than the 1,000 it can be"):
        read_json(tmp_path / "big.json", max_bytes=1000)
    (tmp_path / "inf.json").write_text('{"a": 1e999}')
    with pytest.raises(ValueError, match="too large"):
        read_json(tmp_path / "inf.json")
    (tmp_path / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(ValueError, match="nested too deeply"):
        read_json(tmp_path / "deep.json")
    assert json.loads((tmp_path / "inf.json").read_text())["a"] == float("inf")  # plain json
