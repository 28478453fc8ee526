"""The Ray side of :mod:`hnviz.sweeps`: a local Ray instance that listens on 127.0.0.1
only (or a connection to a cluster), one Tune experiment over the missing trials, a tqdm
bar fed by Tune's callbacks. Ray is imported only here, and only when a sweep runs."""
from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from .sweep_spec import Trial
from .sweep_trials import run_trial

LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}


def _tune_trial(config: dict[str, Any]) -> None:
    """Ray Tune's function trainable: one trial, its figures reported as the result."""
    import ray
    from ray import tune

    row = run_trial(config["trial"], config["spec"], config["out"], config["threads"],
                    ray.get_runtime_context().get_node_id())
    tune.report({k: v for k, v in row.items() if isinstance(v, (int, float))})


def _start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Connect to ``address``, or start a local Ray on 127.0.0.1; True if started here."""
    import ray

    if ray.is_initialized():
        if address:
            raise RuntimeError("Ray is already initialised in this process; call "
                               "ray.shutdown() before a sweep on another cluster")
        return False  # the user's own Ray session
    if address:
        ray.init(address=address, log_to_driver=False, configure_logging=False)
        return False
    # Ray turns a node address of 127.0.0.1 into the machine's network address and then
    # listens on every interface; in its laptop mode (this variable, read by each Ray
    # process when it imports Ray, and so also set on the already imported module for
    # this one) the node is 127.0.0.1 and every Ray server listens there only.
    from ray._private import ray_constants

    saved = {k: os.environ.get(k) for k in LOCAL_RAY_ENV}
    saved_flag = ray_constants.ENABLE_RAY_CLUSTER
    os.environ.update(LOCAL_RAY_ENV)
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
                 object_store_memory=200 * 2**20, log_to_driver=False, configure_logging=False)
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return True


def _progress(bar: Any) -> Any:
    """A Tune callback counting finished trials on the tqdm ``bar``. The bar stays in this
    process: Tune pickles its callbacks with the experiment state (by value, for a class
    made here), and a notebook's bar is an unpicklable widget, so nothing refers to it but
    the instance, whose pickled state leaves it out."""
    from ray import tune

    class Progress(tune.Callback):
        def __init__(self, bar: Any) -> None:
            self.bar = bar

        def __getstate__(self) -> dict:
            return {"bar": None}

        def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if self.bar is not None:
                self.bar.update(1)

        def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
            if self.bar is not None:
                self.bar.update(1)
                self.bar.set_postfix_str("failed: 1+")

    return Progress(bar)


def run_on_ray(missing: list[Trial], spec: dict, out: Path, address: str | None,
                max_concurrent: int | None, num_cpus: int | None, bar: Any) -> list[str]:
    """Run the trials as one Tune experiment; returns the errors of failed trials."""
    try:
        import ray
        from ray import tune
    except ImportError as e:
        raise ImportError("sweeps need Ray: pip install -e '.[sweep]'") from e

    def name(trial: Any) -> str:
        return Trial(**trial.config["trial"]).trial_id

    started = _start_ray(address, num_cpus)
    try:
        res = spec["resources"]
        trainable = tune.with_resources(_tune_trial, {"cpu": res["cpu"], "gpu": res["gpu"]})
        param_space = {"trial": tune.grid_search([t.to_dict() for t in missing]), "spec": spec,
                       "out": str(out.resolve()), "threads": max(1, int(res["cpu"]))}
        tuner = tune.Tuner(
            trainable, param_space=param_space,
            tune_config=tune.TuneConfig(max_concurrent_trials=max_concurrent, reuse_actors=True,
                                        trial_name_creator=name, trial_dirname_creator=name),
            run_config=tune.RunConfig(storage_path=str((out / "_ray").resolve()),
                                      name=f"sweep-{time.strftime('%Y%m%d-%H%M%S')}",
                                      verbose=0, callbacks=[_progress(bar)]))
        log = out / "_ray" / "tune.log"  # Tune prints its headers whatever the verbosity
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f, contextlib.redirect_stdout(f):
            results = tuner.fit()
        return [str(r.error).strip().splitlines()[-1] for r in results if r.error is not None]
    finally:
        if started:
            ray.shutdown()
