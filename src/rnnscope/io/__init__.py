"""Files: run directories, checkpoints, import of networks trained elsewhere. Only this package writes files."""

from rnnscope.io._atomic import (
    atomic_write,
    clean_stale_temporaries,
    is_temporary,
    publish_directory,
    remove_tree,
    save_figure,
    write_bytes,
    write_json,
    write_text,
)
from rnnscope.io._lock import LOCK_NAME, RUN_FILES, RunLock, lock_run_dir
from rnnscope.io._paths import check_output
from rnnscope.io._recordings import RECORDING_SUFFIXES, read_recordings, write_recordings
from rnnscope.io._reference import import_reference, load_reference
from rnnscope.io._rundir import (
    CHECKPOINT as CHECKPOINT_NAME,
)
from rnnscope.io._rundir import (
    CONFIG as CONFIG_NAME,
)
from rnnscope.io._rundir import (
    FORMAT,
    Run,
    check_new_run_dir,
    check_tensors,
    load_checkpoint,
    load_run,
    load_weights,
    read_config,
    read_json_file,
    read_metrics,
    read_text,
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
    "check_output",
    "check_new_run_dir",
    "check_tensors",
    "import_reference",
    "load_reference",
    "read_recordings",
    "write_recordings",
    "RECORDING_SUFFIXES",
    "load_run",
    "load_weights",
    "read_config",
    "read_metrics",
    "read_json_file",
    "read_text",
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
    "clean_stale_temporaries",
    "is_temporary",
    "publish_directory",
    "remove_tree",
    "LOCK_NAME",
    "RUN_FILES",
    "RunLock",
    "lock_run_dir",
]

# Networks trained in plain PyTorch (torch.nn.GRU/LSTM/RNN + Linear; appended by the cells/sweep engineer)
from rnnscope.io._torch_import import TORCH_CELLS, gated_from_state_dict, import_torch, read_torch_state_dict  # noqa: E402

__all__ += ["TORCH_CELLS", "import_torch", "read_torch_state_dict", "gated_from_state_dict"]

# The lineage section of config.json: parents, stages, the seed of J0 (issue 13, appended by the lineage engineer)
from rnnscope.io._lineage import LINEAGE_KINDS, read_lineage, weights_sha256, write_lineage  # noqa: E402

__all__ += ["LINEAGE_KINDS", "read_lineage", "weights_sha256", "write_lineage"]

# Groups of networks: the run directories of an ensemble or a sweep directory (issue 15, the groups engineer)
from rnnscope.io._groups import is_run_directory, run_directories  # noqa: E402

__all__ += ["is_run_directory", "run_directories"]
