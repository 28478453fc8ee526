"""``python -m hnviz``: the command line (:mod:`hnviz.cli`); Ctrl-C while it starts up
(importing torch takes seconds) exits 130 with one line, like Ctrl-C later."""
import sys

try:
    from .cli import main
except KeyboardInterrupt:
    print("hnviz: interrupted", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
