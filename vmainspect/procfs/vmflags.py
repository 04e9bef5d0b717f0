"""VmFlags mnemonics of /proc/PID/smaps and what they mean (stdlib only).

The two-letter codes and their meanings follow the kernel's
Documentation/filesystems/proc.rst (``show_smap_vma_flags`` in
fs/proc/task_mmu.c), up to Linux 6.18/6.19. A mnemonic that is not in the table
(a newer kernel) is kept in ``Vma.flags`` as printed; ``describe_flag`` then
says it is unknown instead of guessing.
"""

from __future__ import annotations

VMFLAG_MEANINGS: dict[str, str] = {
    "rd": "readable",
    "wr": "writeable",
    "ex": "executable",
    "sh": "shared",
    "mr": "may read",
    "mw": "may write",
    "me": "may execute",
    "ms": "may share",
    "gd": "stack segment grows down",
    "pf": "pure PFN range",
    "dw": "disabled write to the mapped file (removed in Linux 5.15)",
    "lo": "pages are locked in memory",
    "io": "memory mapped I/O area",
    "sr": "sequential read advise provided",
    "rr": "random read advise provided",
    "dc": "do not copy area on fork",
    "de": "do not expand area on remapping",
    "ac": "area is accountable",
    "nr": "swap space is not reserved for the area",
    "ht": "area uses huge tlb pages",
    "sf": "synchronous page fault",
    "ar": "architecture specific flag",
    "wf": "wipe on fork",
    "dd": "do not include area into core dump",
    "sd": "soft dirty flag",
    "mm": "mixed map area",
    "hg": "huge page advise flag",
    "nh": "no huge page advise flag",
    "mg": "mergeable advise flag",
    "bt": "arm64 BTI guarded page",
    "mt": "arm64 MTE allocation tags are enabled",
    "um": "userfaultfd missing tracking",
    "uw": "userfaultfd wr-protect tracking",
    "ui": "userfaultfd minor fault",
    "ss": "shadow stack page",
    "sl": "sealed",
    "lf": "lock on fault pages",
    "dp": "always lazily freeable mapping",
    "gu": "maybe contains guard regions (if not set, definitely doesn't)",
}


def describe_flag(mnemonic: str) -> str:
    """The meaning of one VmFlags mnemonic, or a note that this kernel added it."""
    meaning = VMFLAG_MEANINGS.get(mnemonic)
    if meaning is None:
        return "unknown to vmainspect (added by a newer kernel; see its Documentation/filesystems/proc.rst)"
    return meaning
