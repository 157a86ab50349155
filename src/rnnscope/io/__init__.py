"""Files: run directories, checkpoints, import of networks trained elsewhere. Only this package writes files."""

from rnnscope.io._atomic import atomic_write, save_figure, write_bytes, write_json, write_text
from rnnscope.io._reference import load_reference
from rnnscope.io._rundir import (
    CHECKPOINT as CHECKPOINT_NAME,
)
from rnnscope.io._rundir import (
    CONFIG as CONFIG_NAME,
)
from rnnscope.io._rundir import (
    FORMAT,
    Run,
    load_checkpoint,
    load_run,
    load_weights,
    read_config,
    read_metrics,
    save_checkpoint,
    save_model_run,
    save_weights,
    write_config,
    write_metrics,
)
from rnnscope.io._rundir import (
    METRICS as METRICS_NAME,
)
from rnnscope.io._rundir import (
    WEIGHTS as WEIGHTS_NAME,
)

__all__ = [
    "FORMAT",
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "METRICS_NAME",
    "CHECKPOINT_NAME",
    "Run",
    "load_reference",
    "load_run",
    "load_weights",
    "read_config",
    "read_metrics",
    "save_checkpoint",
    "load_checkpoint",
    "save_model_run",
    "save_weights",
    "write_config",
    "write_metrics",
    "atomic_write",
    "save_figure",
    "write_bytes",
    "write_json",
    "write_text",
]
