"""``python -m hnviz``: the command line (:mod:`hnviz.cli.parser`). Ctrl-C while it starts up
exits 130 with one line, like Ctrl-C later; once the command has finished, Ctrl-C is
ignored (torch's exit hooks would print a traceback, or Python would exit by SIGINT)."""
import os
import signal
import sys

try:
    from .cli.parser import main
except KeyboardInterrupt:
    print("hnviz: interrupted", file=sys.stderr, flush=True)
    os._exit(130)

code = main()
signal.signal(signal.SIGINT, signal.SIG_IGN)  # the work is done (or given up): exit quietly
if code == 130:  # Python would turn a Ctrl-C that fell inside C code into an exit by SIGINT
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(130)
sys.exit(code)
