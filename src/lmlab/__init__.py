"""lmlab: pretrain, fine-tune, evaluate and sweep Transformer language models."""

__version__ = "0.1.0"

# Config resolvers (W&B group and run names of sweep jobs), needed wherever a config is resolved.
from lmlab.sweeps.naming import register_resolvers as _register_resolvers  # noqa: E402

_register_resolvers()

# The run folder resolver behind hydra.run.dir (resume=auto finds the previous folder of the same command).
from lmlab.reliability.resume import register_resolver as _register_run_dir  # noqa: E402

_register_run_dir()

# trainer.precision=auto (bf16 on GPUs that support it, fp16 on older ones, fp32 on CPUs).
from lmlab.scale.precision import register_resolver as _register_precision  # noqa: E402

_register_precision()
