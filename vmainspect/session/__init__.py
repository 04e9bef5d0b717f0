"""The live-session layer: one process followed over time (see ``live.py``).

Below ``commands/`` and ``tui/``, above ``snapshot/`` and ``faults/``: the
TUI's live source, ``record`` and ``faults`` all drive a ``LiveSession``.
"""

from __future__ import annotations

from .live import Ended, Final, LiveSession, Step
from .pacing import DEFAULT_LOCK_BUDGET, HeldBack

__all__ = ["DEFAULT_LOCK_BUDGET", "Ended", "Final", "HeldBack", "LiveSession", "Step"]
