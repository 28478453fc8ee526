"""Bad constructor arguments of the widgets (and of save_figures, behind ``python -m
hnviz figures``) raise one line naming the argument, the value and what is expected,
before anything is built: never Python's own comparison errors or a traitlets error."""
import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import hnviz  # noqa: E402
from hnviz.widgets import (EmbeddingExplorer, ForgettingDashboard,  # noqa: E402
                           ForgettingLab, InterpolationExplorer, LiveTraining, MethodsLab,
                           ReplayExplorer, save_figures, set_display)

NAN = float("nan")


def _one_line(e):
    text = str(e.value)
    assert text.count("\n") <= 1 and "Trait" not in text and "not supported" not in text, text
    return text


INTERPOLATION = [  # (keyword arguments, error, words the message holds)
    ({"a": "0"}, ValueError, "a must be an integer >= 0, got '0'"),
    ({"a": True}, ValueError, "a must be an integer >= 0, got True"),
    ({"b": 1.0}, ValueError, "b must be an integer >= 0, got 1.0"),
    ({"a": -1}, ValueError, "a must be an integer >= 0, got -1"),
    ({"b": 3}, ValueError, "b = 3 is out of range: the run has tasks 0..2; e.g. b=0"),
    ({"a": NAN}, ValueError, "a must be an integer >= 0, got nan"),
    ({"n_steps": "41"}, ValueError, "n_steps must be an integer >= 2 and <= 100000, got '41'"),
    ({"n_steps": 1}, ValueError, "n_steps must be an integer >= 2"),
    ({"n_steps": 2.5}, ValueError, "n_steps must be an integer >= 2"),
    ({"n_steps": False}, ValueError, "n_steps must be an integer >= 2"),
    ({"extrapolate": NAN}, ValueError, "extrapolate must be a finite number >= 0"),
    ({"extrapolate": -1}, ValueError, "extrapolate must be a finite number >= 0"),
    ({"extrapolate": "0.5"}, ValueError, "extrapolate must be a finite number >= 0"),
    ({"extrapolate": 1e300}, ValueError, "extrapolate must be a finite number >= 0 and <= 100"),
    ({"tasks": 5}, TypeError, "tasks must be a task sequence"),
]
EMBEDDING = [
    ({"resolution": "40"}, ValueError, "resolution must be an integer >= 2 and <= 500, got '40'"),
    ({"resolution": 1}, ValueError, "resolution must be an integer >= 2"),
    ({"resolution": True}, ValueError, "resolution must be an integer >= 2"),
    ({"resolution": 10_000}, ValueError, "resolution must be an integer >= 2 and <= 500"),
    ({"n_samples": 0}, ValueError, "n_samples must be an integer >= 1"),
    ({"n_samples": -1}, ValueError, "n_samples must be an integer >= 1"),
    ({"n_samples": 1.5}, ValueError, "n_samples must be an integer >= 1"),
    ({"n_samples": "all"}, ValueError, "n_samples must be an integer >= 1"),
    ({"margin": NAN}, ValueError, "margin must be a finite number >= 0"),
    ({"margin": -0.5}, ValueError, "margin must be a finite number >= 0"),
    ({"margin": "0.5"}, ValueError, "margin must be a finite number >= 0"),
    ({"color_by": "1"}, ValueError, "color_by must be an integer >= -1, got '1'"),
    ({"color_by": True}, ValueError, "color_by must be an integer >= -1, got True"),
    ({"color_by": 1.0}, ValueError, "color_by must be an integer >= -1"),
    ({"color_by": -2}, ValueError, "color_by must be an integer >= -1, got -2"),
    ({"color_by": 3}, ValueError, "color_by = 3 is out of range: the run has tasks 0..2 (or -1)"),
    ({"tasks": "abc"}, TypeError, "tasks must be a task sequence"),
]
LIVE = [
    ({"min_interval": "a"}, ValueError, "min_interval must be a finite number >= 0"),
    ({"min_interval": -1}, ValueError, "min_interval must be a finite number >= 0"),
    ({"min_interval": NAN}, ValueError, "min_interval must be a finite number >= 0"),
    ({"mse_range": (1, 0)}, ValueError, "mse_range must be (lo, hi) with 0 < lo < hi"),
    ({"mse_range": (0, 1)}, ValueError, "mse_range must be (lo, hi) with 0 < lo < hi"),
    ({"mse_range": (NAN, 1)}, ValueError, "mse_range must be (lo, hi) with 0 < lo < hi"),
    ({"mse_range": "ab"}, ValueError, "mse_range must be (lo, hi) with 0 < lo < hi"),
    ({"mse_range": (1e-3, 1, 2)}, ValueError, "mse_range must be (lo, hi) with 0 < lo < hi"),
    ({"hints": 1}, TypeError, "hints must be True or False, got 1"),
]
LAB = [  # ForgettingLab
    ({"beta": "a"}, ValueError, "beta must be a finite number >= 0, got 'a'"),
    ({"beta": -1}, ValueError, "beta must be a finite number >= 0, got -1"),
    ({"beta": NAN}, ValueError, "beta must be a finite number >= 0"),
    ({"beta": True}, ValueError, "beta must be a finite number >= 0, got True"),
    ({"betas": ["a"]}, ValueError, "betas must be finite numbers >= 0, got 'a'"),
    ({"betas": [0.1, -1]}, ValueError, "betas must be finite numbers >= 0, got -1"),
    ({"betas": 5}, TypeError, "betas must be a list of finite numbers >= 0"),
    ({"betas": "0.1"}, TypeError, "betas must be a list of finite numbers >= 0"),
    ({"n_steps": "5"}, ValueError, "n_steps must be an integer >= 1 and <= 100000, got '5'"),
    ({"n_steps": 0}, ValueError, "n_steps must be an integer >= 1"),
    ({"n_steps": -5}, ValueError, "n_steps must be an integer >= 1"),
    ({"n_steps": 1.5}, ValueError, "n_steps must be an integer >= 1"),
    ({"n_steps": True}, ValueError, "n_steps must be an integer >= 1"),
    ({"n_steps": 200_000}, ValueError, "n_steps must be an integer >= 1 and <= 100000"),
    ({"random_state": -1}, ValueError, "random_state must be an integer >= 0"),
    ({"random_state": "0"}, ValueError, "random_state must be an integer >= 0"),
    ({"records": -1}, ValueError, "records must be an integer >= 0"),
    ({"records": 2.5}, ValueError, "records must be an integer >= 0"),
    ({"preset": 3}, ValueError, "unknown preset 3"),
    ({"tasks": 5}, TypeError, "tasks must be a task sequence"),
]
METHODS_LAB = [
    ({"n_steps": 0.5}, ValueError, "n_steps must be an integer >= 1"),
    ({"n_steps": 0}, ValueError, "n_steps must be an integer >= 1"),
    ({"methods": ["x"]}, ValueError, "unknown method 'x'; choose one of hnet, finetune, ewc"),
    ({"methods": "hnet"}, TypeError, "methods must be a list of method names"),
    ({"methods": []}, ValueError, "methods is empty"),
    ({"methods": ["hnet", "hnet"]}, ValueError, "methods lists 'hnet' twice"),
    ({"methods": ["dgr"]}, ValueError, "unknown method 'dgr'"),
    ({"records": 0}, ValueError, "records must be an integer >= 1"),
    ({"records": "50"}, ValueError, "records must be an integer >= 1"),
    ({"min_interval": NAN}, ValueError, "min_interval must be a finite number >= 0"),
    ({"min_interval": -1}, ValueError, "min_interval must be a finite number >= 0"),
    ({"random_state": True}, ValueError, "random_state must be an integer >= 0"),
]
REPLAY = [  # checked before the run (a plain hypernetwork run has no replay model)
    ({"n": True}, ValueError, "n must be an integer >= 1 and <= 16, got True"),
    ({"n": 0}, ValueError, "n must be an integer >= 1 and <= 16, got 0"),
    ({"n": 17}, ValueError, "n must be an integer >= 1 and <= 16, got 17"),
    ({"n": "4"}, ValueError, "n must be an integer >= 1 and <= 16, got '4'"),
    ({"a": "0"}, ValueError, "a must be an integer >= 0, got '0'"),
    ({"b": -1}, ValueError, "b must be an integer >= 0, got -1"),
]


def _check(make, kwargs, error, words):
    with pytest.raises(error) as e:
        make(**kwargs)
    assert words in _one_line(e), str(e.value)


@pytest.mark.parametrize("kwargs, error, words", INTERPOLATION)
def test_interpolation_explorer_arguments(tiny_toy_learner, kwargs, error, words):
    _check(lambda **kw: InterpolationExplorer(tiny_toy_learner, **kw), kwargs, error, words)


@pytest.mark.parametrize("kwargs, error, words", EMBEDDING)
def test_embedding_explorer_arguments(tiny_toy_learner, kwargs, error, words):
    _check(lambda **kw: EmbeddingExplorer(tiny_toy_learner, **kw), kwargs, error, words)


@pytest.mark.parametrize("kwargs, error, words", REPLAY)
def test_replay_explorer_arguments(tiny_toy_learner, kwargs, error, words):
    _check(lambda **kw: ReplayExplorer(tiny_toy_learner, **kw), kwargs, error, words)


@pytest.mark.parametrize("kwargs, error, words", LIVE)
def test_live_training_arguments(kwargs, error, words):
    _check(LiveTraining, kwargs, error, words)


@pytest.mark.parametrize("kwargs, error, words", LAB)
def test_forgetting_lab_arguments(toy, kwargs, error, words):
    _check(lambda **kw: ForgettingLab(**{"tasks": toy, **kw}), kwargs, error, words)


@pytest.mark.parametrize("kwargs, error, words", METHODS_LAB)
def test_methods_lab_arguments(toy, kwargs, error, words):
    _check(lambda **kw: MethodsLab(**{"tasks": toy, **kw}), kwargs, error, words)


def test_dashboard_save_dir_and_set_display(tiny_toy_learner):
    for bad in (3, None, 1.5):
        with pytest.raises(TypeError, match="save_dir must be a folder path"):
            ForgettingDashboard(tiny_toy_learner, save_dir=bad)
    words = r"width = '790' px is outside 300..4000 \(an integer\); use e.g. 790"
    with pytest.raises(ValueError, match=words):
        set_display(width="790")
    with pytest.raises(ValueError, match=r"width = 790.5 px is outside 300..4000"):
        set_display(width=790.5)
    with pytest.raises(ValueError, match=r"font_scale = nan is outside 0.5..3"):
        set_display(font_scale=NAN)
    with pytest.raises(ValueError, match=r"font_scale = '1' is outside 0.5..3"):
        set_display(font_scale="1")


def test_good_arguments_still_work(tiny_toy_learner):
    """numpy integers are integers; a == b is allowed; None keeps the defaults."""
    w = InterpolationExplorer(tiny_toy_learner, a=np.int64(1), b=1, n_steps=np.int32(5),
                              extrapolate=0)
    assert w.errors == [] and (w.state.a, w.state.b) == (1, 1)
    e = EmbeddingExplorer(tiny_toy_learner, resolution=3, n_samples=None, color_by=np.int64(2))
    assert e.errors == [] and e.state.color_by == 2
    live = LiveTraining(min_interval=0, mse_range=(1e-3, 1.0), hints=False)
    assert live.errors == []


# ------------------------------------------------------------------- save_figures
@pytest.fixture(scope="module")
def run_dir(tiny_toy_learner, toy, tmp_path_factory):
    root = tmp_path_factory.mktemp("figruns")
    return hnviz.save_run(tiny_toy_learner, root / "run", benchmark=toy.spec)


SAVE = [  # (keyword arguments, error, words the message holds)
    ({"a": -1}, ValueError, "a = -1 is out of range (-a -1): run 'run' has tasks 0..2; "
                            "pass -a 0..2, e.g. -a 0"),
    ({"a": 99}, ValueError, "a = 99 is out of range"),
    ({"b": 3}, ValueError, "b = 3 is out of range (-b 3): run 'run' has tasks 0..2"),
    ({"a": "0"}, TypeError, "-a '0' is not a task number: pass an integer 0..T-1, e.g. -a 0"),
    ({"a": True}, TypeError, "-a True is not a task number"),
    ({"b": 1.0}, TypeError, "-b 1.0 is not a task number"),
    ({"alpha": NAN}, ValueError, "--alpha nan must be a finite number, e.g. --alpha 0.5"),
    ({"alpha": float("inf")}, ValueError, "--alpha inf must be a finite number"),
    ({"alpha": "0.5"}, TypeError, "--alpha '0.5' must be a finite number"),
    ({"alpha": True}, TypeError, "--alpha True must be a finite number"),
    ({"task": -2}, ValueError, "task = -2 is out of range (--task -2): run 'run' has tasks "
                               "0..2; pass --task 0..2 or -1 (none), e.g. --task 0"),
    ({"task": 3}, ValueError, "task = 3 is out of range (--task 3)"),
    ({"task": "1"}, TypeError, "--task '1' is not a task number"),
    ({"dpi": 0}, ValueError, "dpi = 0 is out of range: pass an integer 30..600, e.g. dpi=110"),
    ({"dpi": 10_000}, ValueError, "dpi = 10000 is out of range"),
    ({"dpi": 110.0}, TypeError, "dpi = 110.0 is not an integer: pass 30..600, e.g. dpi=110"),
]


@pytest.mark.parametrize("kwargs, error, words", SAVE)
def test_save_figures_checks_options_before_building(run_dir, tmp_path, kwargs, error, words):
    out = tmp_path / "f"
    with pytest.raises(error) as e:
        save_figures([run_dir], out, **kwargs)
    text = _one_line(e)
    assert words in text and "TraitError" not in text, text
    assert not out.exists()  # refused before anything was written


def test_save_figures_good_options_and_one_path(run_dir, tmp_path):
    written = save_figures(run_dir, tmp_path / "f", a=np.int64(2), b=0, alpha=np.float32(0.25),
                           task=1, dpi=40)  # one run directory as it is: not its letters
    assert sorted(p.name for p in written) == ["forgetting.png", "run_embedding.png",
                                                "run_interpolation.png"]


@pytest.mark.parametrize("argv, words", [
    (["-a", "-1"], "a = -1 is out of range (-a -1): run 'run' has tasks 0..2"),
    (["-b", "7"], "b = 7 is out of range (-b 7)"),
    (["--task", "-5"], "task = -5 is out of range (--task -5)"),
    (["--task", "3"], "task = 3 is out of range (--task 3)"),
])
def test_figures_command_names_the_option(run_dir, tmp_path, capsys, argv, words):
    from hnviz.cli.parser import main

    assert main(["figures", str(run_dir), "--out", str(tmp_path / "f"), *argv]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and words in err[0] and "Trait" not in err[0], err
