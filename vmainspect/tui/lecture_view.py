"""The lecture's projector theme, and the frame filtered to the workload's own mappings."""

from __future__ import annotations

from textual.theme import Theme

from ..model import Frame, Vma, replace

OWN_ANON = "[anon:vmainspect"  # every anonymous region the workload makes is named so

# --lecture: black background, white text, yellow and cyan accents, for projectors
LECTURE_THEME = Theme(
    name="vmainspect-lecture",
    dark=True,
    primary="#ffd400",
    secondary="#00e5ff",
    accent="#ffd400",
    foreground="#ffffff",
    background="#000000",
    surface="#000000",
    panel="#202020",
    success="#00e000",
    warning="#ffd400",
    error="#ff3030",
)


def own_frame(frame: Frame, folder: str, ranges: tuple[tuple[int, int], ...]) -> Frame:
    """The frame with only the workload's own mappings: the lesson's regions and files.

    A region is known by its address range (the lesson records where each step
    mapped); names of anonymous regions (``[anon:vmainspect ...]``) need
    CONFIG_ANON_VMA_NAME, which not every kernel has (docs/kernel-notes.md).
    """
    prefix = folder.rstrip("/") + "/"

    def own(v: Vma) -> bool:
        if v.path and (v.path.startswith(OWN_ANON) or v.path.startswith(prefix)):
            return True
        return any(v.start < a + n and a < v.end for a, n in ranges)

    vmas = tuple(v for v in frame.snapshot.vmas if own(v))
    return replace(frame, snapshot=replace(frame.snapshot, vmas=vmas))
