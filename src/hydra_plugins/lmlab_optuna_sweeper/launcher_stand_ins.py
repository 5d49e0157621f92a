"""Stand-in configs for launcher plugins that are not installed (Hydra imports this module at start-up).

``hydra/launcher=joblib`` without hydra-joblib-launcher then composes, and the sweep stops before its first
job with an error that names the extra to install (``lmlab.sweeps.launchers.check_launcher``).
Every Hydra program in the environment loads it: only Hydra and the light ``lmlab.sweeps.launchers`` here.
"""

from hydra.core.config_store import ConfigStore

from lmlab.sweeps.launchers import importable

# hydra/launcher=<name> -> the launcher class its plugin registers under that name
LAUNCHER_TARGETS = {
    "joblib": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
    "submitit_slurm": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
    "submitit_local": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
}


def stand_in_configs() -> dict[str, dict[str, str]]:
    """A config naming the launcher class, for each launcher whose plugin is not installed."""
    return {
        name: {"_target_": target}
        for name, target in LAUNCHER_TARGETS.items()
        if not importable(target.rsplit(".", 1)[0])
    }


for _name, _node in stand_in_configs().items():
    ConfigStore.instance().store(group="hydra/launcher", name=_name, node=_node, provider="lmlab")
