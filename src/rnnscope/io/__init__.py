"""Files: run directories, checkpoints, import of networks trained elsewhere. Only this package writes files."""

from rnnscope.io._reference import load_reference

__all__ = ["load_reference"]
