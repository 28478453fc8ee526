"""Layer 5, run files: run directories (``runs``) and checkpoints of a run in progress
(``checkpoint``), two file formats of a learner's state."""
