"""The JSON Schemas (draft 2020-12) of vmainspect's machine-readable outputs.

They ship as package data in ``vmainspect/schemas/`` (pyproject:
``schemas/*.json``), one file per schema name: ``vmainspect/diff@1`` is
``schemas/diff-1.json``. Each has ``$id``
``https://vmainspect.invalid/schemas/<file>``, so a schema can ``$ref``
another by its file name (a recording's first frame is a whole snapshot).

- ``snapshot-1.json``: ``vmainspect snapshot``, ``vmainspect/snapshot@1``
- ``recording-1.json``: each line of a ``vmainspect record`` file
- ``diff-1.json``: ``vmainspect diff --json``
- ``faults-1.json``: ``vmainspect faults --json``
- ``demo-1.json``: ``vmainspect demo --script --json``
- ``crash-1.json``: ``vmainspect crash --json``
- ``cache-1.json``: ``vmainspect cache --json``
- ``wss-1.json``: ``vmainspect wss --json``

Stdlib only: validating needs the ``jsonschema`` package, which vmainspect
itself does not depend on.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

BASE_URI = "https://vmainspect.invalid/schemas/"


def file_name(name: str) -> str:
    """``vmainspect/diff@1`` -> ``diff-1.json``; a file name is returned as is."""
    if name.endswith(".json"):
        return name
    base, at, major = name.rpartition("/")[2].partition("@")
    if not at or not major.isdigit():
        raise ValueError(f"not a schema name: {name!r}")
    return f"{base}-{major}.json"


def names() -> list[str]:
    """The schema files shipped, sorted."""
    from importlib import resources

    return sorted(
        p.name
        for p in resources.files("vmainspect").joinpath("schemas").iterdir()
        if p.name.endswith(".json")
    )


@cache
def _text(fname: str) -> str:
    from importlib import resources

    return resources.files("vmainspect").joinpath("schemas", fname).read_text("utf-8")


def load(name: str) -> dict[str, Any]:
    """The schema for a schema name or file name, as a fresh dict (FileNotFoundError if none)."""
    doc: dict[str, Any] = json.loads(_text(file_name(name)))
    return doc
