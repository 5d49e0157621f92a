"""Hyperparameter sweeps: search spaces, the Optuna ask-and-tell loop, per-job records and the summary.

The Hydra side lives in ``hydra_plugins.lmlab_optuna_sweeper`` (the sweeper plugin) and
``lmlab.sweeps.callback`` (what every multirun job records, and the summary of grid sweeps).
This package imports nothing heavy at import time: Hydra loads the callback for every run.
"""
