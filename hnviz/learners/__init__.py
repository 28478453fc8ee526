"""Layer 2, the learners: configs and presets, the learner base and state, HyperCL
(HNET), the baselines, DGR, HNET+R and the method registry (``methods``)."""
