"""Training: the config, the sync-free step, the loop and the run folder."""
