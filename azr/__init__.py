"""azr: an open implementation of the Absolute Zero Reasoner (Zhao et al., arXiv 2505.03335).

This module stays import-free: the sandbox worker imports the package with `python -S` and
nothing but the standard library.
"""

__version__ = "0.8.0"
