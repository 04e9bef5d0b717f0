"""The Kind column's colour for each VMA kind (the legend and the ? help show them)."""

from __future__ import annotations

KIND_COLOURS = {
    "heap": "yellow",
    "stack": "magenta",
    "vdso": "bright_black",
    "vvar": "bright_black",
    "vsyscall": "bright_black",
    "file-private": "cyan",
    "file-shared": "bright_cyan",
    "anon-private": "green",
    "anon-shared": "bright_green",
    "guard": "bright_black",
    "deleted": "red",
    "shm": "bright_magenta",
    "hugetlb": "bright_blue",
}
