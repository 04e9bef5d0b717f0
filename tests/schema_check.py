"""Validate real outputs against the JSON Schemas that ship in the installed package.

The schemas are read through importlib.resources from the imported
``vmainspect`` package (the package data pyproject ships), never from the
source tree by path, and cross-file ``$ref``s (a recording's first frame is a
snapshot) resolve through a registry of those same files.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources

from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from vmainspect import schemas as json_schemas


def shipped() -> dict[str, dict]:
    """File name -> schema, for every schemas/*.json in the installed package."""
    d = resources.files("vmainspect").joinpath("schemas")
    return {p.name: json.loads(p.read_text("utf-8")) for p in d.iterdir() if p.name.endswith(".json")}


@cache
def registry() -> Registry:
    """The shipped schemas by their $id."""
    return Registry().with_resources((s["$id"], Resource.from_contents(s)) for s in shipped().values())


@cache
def validator(name: str) -> Draft202012Validator:
    """A validator for a schema name (``vmainspect/faults@1``) or file name (``faults-1.json``)."""
    schema = shipped()[json_schemas.file_name(name)]
    return Draft202012Validator(
        schema, registry=registry(), format_checker=Draft202012Validator.FORMAT_CHECKER
    )


def validate(doc, name: str | None = None) -> None:
    """Raise jsonschema.ValidationError unless ``doc`` is valid; the schema is ``doc["schema"]`` by default."""
    validator(name or doc["schema"]).validate(doc)


def validate_recording(path: str, *, every_frame: bool = False) -> int:
    """Every line of a recording against recording@1; rebuilt frames against snapshot@1.

    The first frame's snapshot is checked by recording@1's ``$ref``; the last
    frame (every patch applied) is rebuilt and checked too, or every frame with
    ``every_frame`` (jsonschema takes ~0.25 s per 150-VMA snapshot with pages).
    Returns the number of frames.
    """
    from vmainspect.recording.patch import apply_patch

    rec_v, snap_v = validator("recording-1.json"), validator("snapshot-1.json")
    frames = 0
    doc = None
    checked = True
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            r = json.loads(line)
            rec_v.validate(r)
            if i == 0:
                assert r["schema"] == "vmainspect/recording@1", r
                continue
            assert "schema" not in r, f"line {i + 1}: a second header"
            if "note" in r:
                continue
            frames += 1
            if "snapshot" in r:
                assert frames == 1, f"line {i + 1}: a second whole snapshot"
                doc = r["snapshot"]
                continue
            if r["patch"] != {"{": {}}:  # an unchanged snapshot was checked a frame ago
                doc = apply_patch(doc, r["patch"])
                checked = False
                if every_frame:
                    snap_v.validate(doc)
                    checked = True
    if not checked:
        snap_v.validate(doc)  # the last frame, rebuilt from every patch
    return frames
