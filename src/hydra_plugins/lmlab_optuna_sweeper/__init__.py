"""lmlab's Hydra sweeper on Optuna (>= 4) ask-and-tell: ``hydra/sweeper=lmlab_optuna``.

Found by Hydra through the ``hydra_plugins`` namespace package (``src/hydra_plugins`` has no __init__.py).
The loop itself is ``lmlab.sweeps.optuna_sweep`` and its settings ``lmlab.sweeps.settings``; this package holds
the plugin class and registers the configs with Hydra. Imports run one way: from here into ``lmlab``.
"""

from lmlab.stages.resolvers import register_resolvers

# Hydra imports its plugins in every process that composes a config (sweep jobs on SLURM too).
register_resolvers()
