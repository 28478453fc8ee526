"""Layer 1, the core: tasks, target nets, hypernetworks, the regularizer, penalties,
the step loop, continual evaluation, the VAE and the replay model. Imports nothing else
of hnviz."""
