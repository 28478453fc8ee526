import pytest
import torch

import hnviz


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def toy():
    return hnviz.toy_regression()


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
