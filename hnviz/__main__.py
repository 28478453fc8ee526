"""``python -m hnviz``: the command line (:mod:`hnviz.cli`); Ctrl-C while it starts up
(importing torch takes seconds) exits 130 with one line, like Ctrl-C later."""
import os
import sys

try:
    from .cli import main
except KeyboardInterrupt:
    print("hnviz: interrupted", file=sys.stderr, flush=True)
    os._exit(130)

code = main()
if code == 130:  # Python would turn a Ctrl-C that fell inside C code into an exit by SIGINT
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
sys.exit(code)
