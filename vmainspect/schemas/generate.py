"""The shipped JSON Schemas, generated from the model's Structs.

``scripts/gen_schemas.py`` writes them into this directory;
tests/unit/test_schemas.py fails when a shipped file differs from what the
classes generate. msgspec makes the schema (types, bounds, patterns,
descriptions from ``Meta`` and docstrings); this module only arranges it the
way the files are published: the document's own object at the top level
with ``$id`` and ``title``, definitions under stable lower-case names, the
``schema`` tag as a ``const``, a snapshot embedded in another document as a
reference to ``snapshot-1.json``, and the few rules a type cannot express
(``if``/``then``) added where a class names them (``RULES``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import msgspec

from . import BASE_URI

DRAFT = "https://json-schema.org/draft/2020-12/schema"


# the last sentence of every description but the snapshot's (which says more)
ADDITIVE = "Readers ignore fields they do not know (additive fields keep @1)."


@dataclass(frozen=True)
class Document:
    title: str  # the schema name, e.g. "vmainspect/snapshot@1"
    description: str
    roots: tuple[type, ...]  # one Struct, or the alternatives of a line (oneOf)
    names: dict[str, str] = field(default_factory=dict)  # class name -> published $defs name
    external: dict[str, str] = field(default_factory=dict)  # class name -> schema file it refers to
    extra_defs: dict[str, Any] = field(default_factory=dict)
    rules: dict[str, dict[str, Any]] = field(default_factory=dict)  # class name -> extra keywords

    @property
    def file(self) -> str:
        """The schema file: "vmainspect/snapshot@1" is snapshot-1.json."""
        return self.title.split("/", 1)[1].replace("@", "-") + ".json"


def _walk(x: Any, fn: Any) -> Any:
    if isinstance(x, dict):
        return fn({k: _walk(v, fn) for k, v in x.items()})
    if isinstance(x, list):
        return [_walk(v, fn) for v in x]
    return x


def _refs(x: Any, out: set[str]) -> set[str]:
    if isinstance(x, dict):
        r = x.get("$ref")
        if isinstance(r, str) and r.startswith("#/$defs/"):
            out.add(r[len("#/$defs/") :])
        for v in x.values():
            _refs(v, out)
    elif isinstance(x, list):
        for v in x:
            _refs(v, out)
    return out


def generate(doc: Document) -> dict[str, Any]:
    """The JSON Schema of ``doc``, as shipped."""

    made = msgspec.json.schema_components(doc.roots)
    # plain JSON types only (msgspec writes a tuple default as a tuple)
    refs: list[Any] = json.loads(msgspec.json.encode(made[0]))
    defs: dict[str, Any] = json.loads(msgspec.json.encode(made[1]))
    for d in defs.values():
        d.pop("title", None)
        props = d.get("properties", {})
        tag = props.get("schema")
        if tag is not None and list(tag) == ["enum"] and len(tag["enum"]) == 1:
            props["schema"] = {"const": tag["enum"][0]}
    for cls, extra in doc.rules.items():
        defs[cls].update(extra)
    names = dict(doc.names)

    def rename(node: dict[str, Any]) -> dict[str, Any]:
        r = node.get("$ref")
        if isinstance(r, str) and r.startswith("#/$defs/"):
            name = r[len("#/$defs/") :]
            if name in doc.external:
                node["$ref"] = doc.external[name]
            else:
                node["$ref"] = "#/$defs/" + names.get(name, name)
        return node

    defs = {k: _walk(v, rename) for k, v in defs.items() if k not in doc.external}
    refs = [_walk(r, rename) for r in refs]
    top: dict[str, Any] = {"$schema": DRAFT, "$id": BASE_URI + doc.file, "title": doc.title}
    if len(doc.roots) == 1:
        root_name = doc.roots[0].__name__
        body = defs.pop(root_name)
        body.pop("description", None)
        top["description"] = doc.description
        top.update(body)
    else:
        top["description"] = doc.description
        top["oneOf"] = refs
    out_defs = {names.get(k, k): v for k, v in defs.items()}
    out_defs.update(doc.extra_defs)
    used = _refs(top, set())
    todo = list(used)
    while todo:  # keep what the document reaches (an external document's parts are not)
        for r in _refs(out_defs.get(todo.pop(), {}), set()) - used:
            used.add(r)
            todo.append(r)
    top["$defs"] = {k: out_defs[k] for k in sorted(out_defs) if k in used}
    return top


def with_readers_ignore(description: str) -> str:
    """``description`` and the sentence every document but the snapshot ends with."""
    return f"{description} {ADDITIVE}"


def text(schema: dict[str, Any]) -> str:
    """A schema as the file holds it."""
    return json.dumps(schema, indent=2, ensure_ascii=False) + "\n"


def documents() -> list[Document]:
    from ..model import cache, crash, demo, diff, faults, wss
    from ..model import recording as rec
    from ..model import snapshot as snap

    snapshot_names = {
        "Vma": "vma",
        "PageInfo": "pages",
        "PageCounts": "counts",
        "PageRun": "run",
        "HostInfo": "host",
        "ProcessInfo": "process",
        "Capabilities": "capabilities",
    }
    return [
        Document(
            title=snap.SNAPSHOT_SCHEMA,
            description=(
                "One look at a Linux process's memory: its VMAs (from /proc/PID/smaps), smaps_rollup "
                "totals and, optionally, per-page state. Sizes are bytes. null means unknown, never zero. "
                "Readers ignore fields they do not know (additive fields keep @1); a breaking change bumps "
                "the schema to @2. See docs/json-formats.md."
            ),
            roots=(snap.Snapshot,),
            names=snapshot_names,
        ),
        Document(
            title=rec.RECORDING_SCHEMA,
            description=with_readers_ignore(
                "One line (record) of a vmainspect recording (vmainspect record): JSON Lines, one JSON object "
                "per line. Line 1 is the header; then frames and notes in time order. The first frame holds a "
                "whole vmainspect/snapshot@1 document, each later frame a patch against the previous frame's "
                "snapshot document. t is seconds since the recording started (monotonic clock)."
            ),
            roots=(rec.Header, rec.SnapshotFrame, rec.PatchFrame, rec.Note),
            names={
                "Header": "header",
                "SnapshotFrame": "snapshot_frame",
                "PatchFrame": "patch_frame",
                "Note": "note",
                "FaultTickRecord": "fault_tick",
                "HostInfo": "host",
            },
            external={"Snapshot": "snapshot-1.json"},
            extra_defs=rec.PATCH_DEFS,
            rules={"FaultTickRecord": rec.FAULT_TICK_RULES},
        ),
        Document(
            title=diff.DIFF_SCHEMA,
            description=with_readers_ignore(
                "What changed in a process's memory between two snapshots (vmainspect diff --json). Sizes are "
                "bytes; null means unknown (a side that does not know a quantity), never zero."
            ),
            roots=(diff.DiffReport,),
            names={
                "DeltaRecord": "delta",
                "VmaRefRecord": "ref",
                "SideRecord": "side",
                "Summary": "summary",
                "Transition": "transition",
                "ChangeRecord": "change",
            },
            rules={"ChangeRecord": diff.CHANGE_RULES},
        ),
        Document(
            title=faults.FAULTS_SCHEMA,
            description=with_readers_ignore(
                'Page faults of one process over a window (vmainspect faults --json). mode "perf": every fault '
                "(or one in period) sampled with perf_event_open and attributed to VMAs, functions and data; "
                'mode "counters": perf_event_open was refused (reason says why) and only /proc minflt/majflt '
                "deltas are known, so the sampled fields are null, never zero."
            ),
            roots=(faults.FaultsReport,),
            names={
                "MinorMajor": "minor_major",
                "VmaFaults": "vma_faults",
                "SymbolCount": "symbol_count",
                "TransitionCount": "transition_count",
                "ThreadFaults": "thread_faults",
            },
            rules={"FaultsReport": faults.FAULTS_RULES},
        ),
        Document(
            title=demo.DEMO_SCHEMA,
            description=with_readers_ignore(
                "The scripted demo lesson (vmainspect demo --script --json): each step performs one memory "
                "operation in a workload process and checks its claim against the kernel's own accounting. "
                "holds is true (the claim held), false (it did not: reason says why) or null (unknown: the "
                "measurement needs root)."
            ),
            roots=(demo.DemoReport,),
            names={"StepRecord": "step"},
            rules={"StepRecord": demo.STEP_RULES},
        ),
        Document(
            title=crash.CRASH_SCHEMA,
            description=with_readers_ignore(
                "The crash experiment (vmainspect crash --json): for each (mapping, ending) case a child maps a"
                " fresh temp file (or anonymous memory), writes known bytes to written_pages of file_pages "
                "pages and ends; what survived is measured. null means unknown (kpageflags needs root) or not "
                "applicable (anonymous memory has no file), never zero or false."
            ),
            roots=(crash.CrashReport,),
            names={"CaseRecord": "case"},
            rules={"CaseRecord": crash.CASE_RULES},
        ),
        Document(
            title=cache.CACHE_SCHEMA,
            description=with_readers_ignore(
                "The page-cache state of files and directory trees (vmainspect cache --json), from "
                "cachestat(2): per regular file its pages cached, dirty, under writeback and evicted. null "
                "means unknown (the kernel tells a file's page-cache state only to its owner, a user who may "
                "write it, or root), never zero."
            ),
            roots=(cache.CacheReport,),
            names={"CachedFile": "file", "CacheTotal": "total"},
        ),
        Document(
            title=wss.WSS_SCHEMA,
            description=with_readers_ignore(
                "A process's working set (vmainspect wss --json): every interval its referenced bits are reset "
                "(/proc/PID/clear_refs) and each VMA's smaps Referenced is read back: the bytes it touched in "
                "that interval (accessed), beside the bytes resident. Sizes are bytes."
            ),
            roots=(wss.WssReport,),
            names={"WssVma": "vma", "WssInterval": "interval"},
        ),
    ]
