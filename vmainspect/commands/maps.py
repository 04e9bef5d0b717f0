"""vmainspect maps PID: a pmap -X style table of a process's VMAs."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Hashable, Mapping
from operator import attrgetter
from operator import sub as _sub
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import Snapshot, Vma

from ..safetext import printable

HELP = "print a process's memory regions as a table (like pmap -X), with totals"
DESCRIPTION = """\
Print every VMA of process PID: address range, permissions, kind, size, RSS,
PSS, dirty (shared + private dirty), swap and path, sizes human-readable
(K/M/G, binary). The totals line is the kernel's own /proc/PID/smaps_rollup.

kinds: heap stack vdso vvar vsyscall file-private file-shared anon-private
anon-shared guard deleted shm hugetlb (--kind file matches file-private and
file-shared, --kind anon both anon kinds).

Without root only your own processes can be read (others' need root or
CAP_SYS_PTRACE); -v says so on each run."""

SORT_KEYS = ("address", "size", "rss", "pss", "dirty", "swap", "kind", "perms", "path")
_NUMERIC = {"size", "rss", "pss", "dirty", "swap"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    from .argtypes import pid_arg

    p.add_argument("pid", type=pid_arg, metavar="PID", help="process id")
    p.add_argument(
        "--sort",
        choices=SORT_KEYS,
        default="address",
        metavar="COLUMN",
        help="sort by COLUMN: " + ", ".join(SORT_KEYS) + " (sizes largest first; default: address)",
    )
    p.add_argument(
        "--kind",
        action="append",
        metavar="K",
        default=None,
        help="only VMAs of kind K (repeat or comma-separate; 'file' and 'anon' match both variants)",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="also print notes (what is hidden without root)"
    )


_start, _end, _perms, _kind, _path = map(attrgetter, ("start", "end", "perms", "kind", "path"))


class _Memo(dict[Hashable, str]):
    """key -> make(key), each distinct key made once (sizes and paths repeat a lot)."""

    def __init__(self, make: Callable[[Any], str]) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, key: Hashable) -> str:
        value = self[key] = self.make(key)
        return value


def _dirty(sm: Mapping[str, int]) -> int:
    return sm.get("shared_dirty", 0) + sm.get("private_dirty", 0)


def _kind_filter(kinds: list[str] | None) -> set[str] | None:
    from ..errors import BadInput
    from ..model import VMA_KINDS

    if not kinds:
        return None
    wanted: set[str] = set()
    for item in kinds:
        for k in filter(None, (x.strip() for x in item.split(","))):
            matches = [v for v in VMA_KINDS if v == k or v.startswith(k + "-")]
            if not matches:
                raise BadInput(f"unknown kind {k!r} (kinds: {', '.join(VMA_KINDS)})")
            wanted.update(matches)
    return wanted


def render(snap: Snapshot, *, sort: str = "address", kinds: set[str] | None = None) -> str:
    """The table for a Snapshot, as text (used by the command and its tests)."""
    from ..units import human_bytes

    hb = _Memo(human_bytes).__getitem__  # sizes repeat a lot: each formatted once

    vmas = [v for v in snap.vmas if kinds is None or v.kind in kinds]
    if sort != "address":
        if sort in _NUMERIC:

            def key(v: Vma) -> Any:
                sm = v.smaps
                return -(v.size if sort == "size" else _dirty(sm) if sort == "dirty" else sm.get(sort, 0))
        elif sort == "path":

            def key(v: Vma) -> Any:
                return (v.path is None, v.path or "")
        else:

            def key(v: Vma) -> Any:
                return getattr(v, sort)

        vmas.sort(key=key)  # stable: ties stay in address order
    p = snap.process
    n = len(vmas)
    starts = list(map(_start, vmas))
    ends = list(map(_end, vmas))
    aw = max(12, len(f"{max(ends):x}") if ends else 0)
    head = (
        f"{'Start':>{aw}} {'End':>{aw}} Perm {'Kind':<12} {'Size':>6} {'RSS':>6} "
        f"{'PSS':>6} {'Dirty':>6} {'Swap':>6}  Path"
    )
    cmd = " ".join(p.cmdline) if p.cmdline else f"[{p.name}]"
    out = [f"{p.pid}:   {printable(cmd)}", head]
    if n:
        # Column by column, each a C-level map; one %-template for all rows.
        smaps = [v.smaps for v in vmas]
        rss = [sm.get("rss") for sm in smaps]
        pss = [sm.get("pss") for sm in smaps]
        dirty = [sm.get("shared_dirty", 0) + sm.get("private_dirty", 0) for sm in smaps]
        swap = [sm.get("swap") for sm in smaps]
        paths = _Memo(lambda path: printable(path) if path else "")
        row = f"%{aw}x %{aw}x %s %-12s %6s %6s %6s %6s %6s  %s"
        out += map(
            row.__mod__,
            zip(
                starts,
                ends,
                map(_perms, vmas),
                map(_kind, vmas),
                map(hb, map(_sub, ends, starts)),
                map(hb, rss),
                map(hb, pss),
                map(hb, dirty),
                map(hb, swap),
                map(paths.__getitem__, map(_path, vmas)),
            ),
        )
    t: Mapping[str, int] = snap.totals
    size = sum(map(_sub, map(_end, snap.vmas), map(_start, snap.vmas)))
    if not snap.vmas:
        out.append(
            "(no VMAs: "
            + (
                " ".join(n for n in snap.capabilities.notes if "VMAs" in n)
                or "the process has no user address space"
            )
            + ")"
        )
    if not t and not snap.vmas:
        t = {"rss": 0, "pss": 0, "shared_dirty": 0, "private_dirty": 0, "swap": 0}
    total_dirty = t.get("shared_dirty", 0) + t.get("private_dirty", 0) if "private_dirty" in t else None
    what = f"{len(snap.vmas)} VMAs (smaps_rollup)"
    if kinds is not None:
        what = f"{len(vmas)} of {len(snap.vmas)} VMAs shown; totals are of all VMAs (smaps_rollup)"
    out.append(
        f"{'':>{aw}} {'':>{aw}} {'':4} {'':12} {'------':>6} {'------':>6} {'------':>6} {'------':>6} {'------':>6}"
    )
    out.append(
        f"{'total':<{2 * aw + 18}} {hb(size):>6} {hb(t.get('rss')):>6} {hb(t.get('pss')):>6} "
        f"{hb(total_dirty):>6} {hb(t.get('swap')):>6}  {what}"
    )
    return "\n".join(out) + "\n"


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from ..snapshot.collect import collect

    kinds = _kind_filter(args.kind)
    snap = collect(args.pid)
    sys.stdout.write(render(snap, sort=args.sort, kinds=kinds))
    sys.stdout.flush()
    if args.verbose and not snap.capabilities.root and os.geteuid() != 0:
        print(
            "vmainspect: note: not root: only your own processes can be read; per-page PFNs "
            "and page flags (snapshot --pages) need root",
            file=sys.stderr,
        )
    return 0
