"""`ray start` for a second node of a loopback-only test cluster: ``python
ray_worker_node.py --address 127.0.0.1:PORT --node-ip-address 127.0.0.1 ...``.

On Linux, Ray turns a node address of 127.0.0.1 into the machine's network address and
listens on every interface; with RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 (its laptop mode) the
node stays on 127.0.0.1 and listens there only, but `ray start --address` then refuses to
add a second node. This wrapper keeps 127.0.0.1 as given and lifts that refusal, so the
test's two-node cluster never listens beyond the loopback interface.
"""
import sys

import ray._private.ray_constants as ray_constants
import ray._private.services as services
from ray.scripts.scripts import main

services.resolve_ip_for_localhost = lambda host: host
ray_constants.ENABLE_RAY_CLUSTER = True
sys.argv = ["ray", "start", *sys.argv[1:]]
main()
