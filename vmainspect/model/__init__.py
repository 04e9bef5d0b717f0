"""The data model and the JSON documents vmainspect writes and reads.

Every document is defined once, as frozen msgspec Structs: the classes are
the in-memory model, the encoder, the validating decoder and (through
``scripts/gen_schemas.py``) the JSON Schema shipped in ``vmainspect/schemas``.
One module per document:

- ``model.snapshot``: ``vmainspect/snapshot@1`` (the process, its VMAs and
  pages) and the in-memory fault and frame types; re-exported here, as
  ``from vmainspect.model import Vma`` is how most code reads the model;
- ``model.frame``: ``Frame``, what a TUI source hands the app each tick,
  and ``ProcessVitals``, the counters a tick reads without the mmap lock;
  re-exported here too;
- ``model.recording``: the lines of ``vmainspect/recording@1``;
- ``model.diff``, ``model.faults``, ``model.demo``, ``model.crash``: the
  ``--json`` outputs of those commands.

Importing this package imports msgspec, ``model.snapshot`` and ``model.frame`` only.
"""

from .frame import *  # noqa: F403 (Frame, Writeback, ProcessVitals)
from .snapshot import *  # noqa: F403 (every public name of model.snapshot)
