"""vmainspect diff A B: what changed between two snapshots (or two moments of a recording)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model import Snapshot

HELP = "compare two snapshots, or two moments of a recording"
DESCRIPTION = """Compare two snapshots: VMAs added, removed, resized or with new permissions;
per-VMA RSS, dirty and swap deltas; and, when both were taken with --pages,
page-state transitions (absent->anon, file->file-dirty, ...) per VMA.

A and B are snapshot files (vmainspect snapshot -o FILE) or moments of a
recording (vmainspect record):
  REC@T   the last frame taken at or before T seconds into the recording (REC@12.5)
  REC#N   frame N, counting from 1; negative counts from the end (REC#-1 = last)

Exit status like diff(1): 0 no differences, 1 differences, 2 trouble.

examples:
  vmainspect diff before.json after.json
  vmainspect diff run.jsonl#1 run.jsonl#-1
  vmainspect diff run.jsonl@0 run.jsonl@30 --json"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("a", metavar="A", help="snapshot file, or REC@T / REC#N")
    p.add_argument("b", metavar="B", help="snapshot file, or REC@T / REC#N")
    p.add_argument("--json", action="store_true", help="print vmainspect/diff@1 JSON instead of a table")


def _loader() -> Callable[[str], tuple[str, Snapshot]]:
    from ..errors import BadInput
    from ..recording import io as record
    from ..snapshot import io as snapshot_io

    recordings: dict[str, record.Recording] = {}

    def load(spec: str) -> tuple[str, Snapshot]:
        path, moment = record.split_moment(spec)
        kind = record.sniff(path)
        if kind == "recording":
            rec = recordings.get(path)
            if rec is None:
                rec = recordings[path] = record.read_recording(path)
                warning = rec.warning()
                if warning:
                    print(f"vmainspect: warning: {warning}", file=sys.stderr)
            if moment is None:
                raise BadInput(
                    f"{path} is a recording: name a moment, {path}@SECONDS or {path}#FRAME "
                    f"(#1..#{len(rec)}, {rec.duration:.1f}s long)"
                )
            i = record.moment_index(rec, moment)
            label = f"{path}#{i + 1} (t={rec.times[i]:.1f}s)"
            return label, rec.snapshot(i)
        if moment is not None:
            raise BadInput(f"{path} is not a recording, so {moment!r} names no moment in it")
        return path, snapshot_io.load(path)

    return load


def run(args: argparse.Namespace) -> int:
    from ..snapshot.diff import diff_snapshots, render_text, to_dict

    load = _loader()
    label_a, a = load(args.a)
    label_b, b = load(args.b)
    d = diff_snapshots(a, b, label_a=label_a, label_b=label_b)
    if args.json:
        sys.stdout.write(json.dumps(to_dict(d), indent=1) + "\n")
    else:
        sys.stdout.write(render_text(d))
    sys.stdout.flush()
    return 1 if d.different else 0
