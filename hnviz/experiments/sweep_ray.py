"""The Ray side of :mod:`hnviz.experiments.sweeps`: a local Ray instance that listens on 127.0.0.1
only (or a connection to a cluster), one Tune experiment over the missing trials, a tqdm
bar fed by Tune's callbacks. Ray is imported only here, and only when a sweep runs; a
cluster's address is checked before (its form, then a TCP connection to it)."""
from __future__ import annotations

import contextlib
import os
import re
import socket
import threading
import time
from pathlib import Path
from typing import Any

from .sweep_checks import MAX_CPUS, shown
from .sweep_spec import MAX_TRIALS, Trial
from .sweep_trials import run_trial
from ..core.validate import check_int

LOCAL_RAY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0"}
ADDRESS_FORMS = "auto, HOST:PORT or ray://HOST:PORT"
# HOST: a name or IPv4 address without spaces, colons or slashes, or [an IPv6 address]
_ADDRESS = re.compile(r"(?:ray://)?(\[[0-9A-Fa-f:.]+\]|[^\s:/\[\]@]+):([0-9]{1,5})")
REACH_SECONDS = 5.0
_START_ONE = "start one with 'ray start --head' or leave out --address for a local Ray"


def check_address(address: Any) -> str | None:
    """``address`` if it is None (a local Ray), ``auto``, ``HOST:PORT`` or
    ``ray://HOST:PORT`` with a port 1..65535; else a ValueError naming the forms."""
    if address is None or address == "auto":
        return address
    match = _ADDRESS.fullmatch(address) if isinstance(address, str) else None
    if match is None or not 1 <= int(match[2]) <= 65535:
        raise ValueError(f"address {shown(address)} is not a Ray cluster address; use "
                         f"{ADDRESS_FORMS} (port 1-65535, e.g. 127.0.0.1:6379 or "
                         "ray://head-node:10001), or leave it out for a local Ray")
    return address


def check_run(address: Any, max_concurrent: Any, num_cpus: Any) -> str | None:
    """The checked address (:func:`check_address`); ``max_concurrent`` and ``num_cpus``
    None or integers within bounds, else a ValueError naming them."""
    if max_concurrent is not None:
        check_int("max_concurrent", max_concurrent, 1, MAX_TRIALS)
    if num_cpus is not None:
        check_int("num_cpus", num_cpus, 1, MAX_CPUS)
    return check_address(address)


_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])


def _speaks_http2(sock: socket.socket) -> bool:
    """The server on ``sock`` answers an HTTP/2 client preface with its SETTINGS frame, as
    every gRPC server (Ray's GCS and its client server) must; a port that accepts and
    then stays silent (on which Ray would retry for ever) does not."""
    sock.sendall(_HTTP2_PREFACE)
    head = b""
    while len(head) < 9:
        chunk = sock.recv(9 - len(head))  # the socket's timeout bounds the wait
        if not chunk:
            return False
        head += chunk
    return head[3] == 4  # frame type SETTINGS


def reach_cluster(address: str | None, name: str | None = None,
                  seconds: float = REACH_SECONDS) -> None:
    """For a ``HOST:PORT`` or ``ray://HOST:PORT`` address: a TCP connection to it, opened
    (name lookup included) and answered as an HTTP/2 (gRPC) server answers within
    ``seconds``, else a ValueError naming it (``name``: how to call it) and why; other
    addresses pass. Ray itself would retry an address nothing answers on for minutes."""
    match = _ADDRESS.fullmatch(address) if address else None
    if match is None:
        return
    host, port = match[1].strip("[]"), int(match[2])
    outcome: list[str | None] = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=seconds) as sock:
                outcome.append(None if _speaks_http2(sock) else
                               "it accepts connections but does not answer as Ray's gRPC does")
        except OSError as e:
            outcome.append(e.strerror or str(e) or type(e).__name__)

    # a thread: name lookup has no timeout of its own
    thread = threading.Thread(target=connect, name="hnviz-ray-address", daemon=True)
    thread.start()
    thread.join(seconds)
    why = outcome[0] if outcome else f"no answer within {seconds:g} s"
    if why is not None:
        raise ValueError(f"cannot reach a Ray cluster at {name or address} ({why}); {_START_ONE}")


def _auto_address() -> str | None:
    """What Ray's ``auto`` finds (RAY_ADDRESS, else the newest cluster started here) as
    HOST:PORT, None when that is unknown (Ray then looks for itself); a ValueError when
    there is no cluster."""
    try:
        from ray._private.services import get_ray_address_from_environment
    except ImportError:  # another Ray version
        return None
    try:
        found = get_ray_address_from_environment("auto", None)
    except ConnectionError as e:
        raise ValueError(f"cannot connect to the Ray cluster at auto: {_first_line(e)}; "
                         f"{_START_ONE}") from None
    except Exception:
        return None
    return found if isinstance(found, str) and _ADDRESS.fullmatch(found) else None


def _first_line(e: BaseException) -> str:
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return (lines[0] if lines else type(e).__name__)[:300].rstrip(".")


def _tune_trial(config: dict[str, Any]) -> None:
    """Ray Tune's function trainable: one trial, its figures reported as the result."""
    import ray
    from ray import tune

    row = run_trial(config["trial"], config["spec"], config["out"], config["threads"],
                    ray.get_runtime_context().get_node_id())
    tune.report({k: v for k, v in row.items() if isinstance(v, (int, float))})


def _start_ray(address: str | None, num_cpus: int | None) -> bool:
    """Connect to ``address`` (checked, and reached, first), or start a local Ray on
    127.0.0.1; True if started here."""
    address = check_address(address)
    import ray

    if ray.is_initialized():
        if address:
            raise RuntimeError("Ray is already initialised in this process; call "
                               "ray.shutdown() before a sweep on another cluster")
        return False  # the user's own Ray session
    if address:
        if address == "auto":
            found = _auto_address()
            reach_cluster(found, f"auto ({found})")
        else:
            reach_cluster(address)
        try:
            ray.init(address=address, log_to_driver=False, configure_logging=False)
        except Exception as e:  # no cluster there, another Ray version, refused...
            raise ValueError(f"cannot connect to the Ray cluster at {address}: "
                             f"{_first_line(e)}; {_START_ONE}") from e
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
    address = check_run(address, max_concurrent, num_cpus)
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
