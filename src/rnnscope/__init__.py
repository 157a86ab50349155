"""rnnscope: train recurrent networks on cognitive tasks and reverse-engineer how they compute."""

__version__ = "0.1.0"
__all__ = ["__version__"]
