import os
import shutil
import sys
from pathlib import Path

import pytest
import torch

import hnviz

sys.path.insert(0, str(Path(__file__).parent))  # helpers such as jupyterlab.py

# Under pytest-xdist (make test runs two workers on the two cores) every worker, and what
# it starts (CLI runs, notebook kernels, Ray trials), uses one torch thread: two busy
# processes with two threads each would wait on each other.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
# Runs compared bit for bit (exact resume, sweeps' reruns) need a fixed thread count:
# hnviz's default "auto" follows the machine's load (hnviz.threads). tests/test_threads.py
# sets its own.
os.environ.setdefault("HNVIZ_THREADS", "1")

# The longest files first, so that two workers end at about the same time.
LONGEST_FIRST = ["test_notebooks.py", "test_paper_results.py", "test_resume.py",
                 "test_sweeps.py", "test_bench.py", "test_widgets.py", "test_baselines.py"]


def pytest_collection_modifyitems(config, items):
    def weight(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)
    items.sort(key=weight)  # stable: a file's tests keep their order


@pytest.fixture
def ray_exclusive():
    """Held while a test runs Ray: `ray stop --force` in one test would end another
    worker's Ray (tests/test_sweeps.py and notebook 06 use it)."""
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "hnviz-tests-ray.lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        yield
        fcntl.flock(f, fcntl.LOCK_UN)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def toy():
    return hnviz.toy_regression()


@pytest.fixture(scope="session")
def saved_runs(tmp_path_factory, toy):
    """Run directories for tests to damage (copy them first): a saved HNET run, a saved
    EWC run, a schema-1 run (hnviz 0.1) and an unfinished HNET run's checkpoints (one
    every 5 steps, stopped at step 16 of task 2)."""
    from interrupt import Stop, StopAt

    root = tmp_path_factory.mktemp("saved_runs")
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=30)
    hnviz.save_run(hnviz.HyperCL(cfg, progress=False).fit(toy), root / "hnet", benchmark=toy.spec)
    bcfg = hnviz.BaselineConfig.preset("toy_regression", method="ewc", n_steps=30)
    hnviz.save_run(hnviz.BaselineCL(bcfg, progress=False).fit(toy), root / "ewc",
                   benchmark=toy.spec)
    shutil.copytree(Path(__file__).parent / "data" / "runs_v0.1" / "toy_hnet", root / "v1")
    with pytest.raises(Stop):
        hnviz.fit_checkpointed(hnviz.HyperCL(cfg, progress=False, callbacks=[StopAt(1, 16)]),
                               toy, root / "ckpt", every=5)
    return root


@pytest.fixture(scope="session")
def tiny_toy_learner(toy):
    """A quickly trained toy learner (60 steps per task): for API tests, not accuracy."""
    cfg = hnviz.HyperCLConfig.preset("toy_regression", n_steps=60)
    return hnviz.HyperCL(cfg, random_state=1, progress=False).fit(toy)


@pytest.fixture(scope="session")
def digits():
    """A 3-task PermutedDigits learner (4-D embeddings: PCA views) and its tasks."""
    tasks = hnviz.permuted_digits(3)
    cfg = hnviz.HyperCLConfig.preset("permuted_digits", n_steps=150, emb_dim=4)
    return hnviz.HyperCL(cfg, random_state=0, progress=False).fit(tasks), tasks
