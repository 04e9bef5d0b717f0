"""vmainspect: a Linux VMA and page-fault inspector."""

__version__ = "0.1.0"
