"""Helpers for the TUI tests: fixture snapshots, a replay source, settling the app.

Not in conftest.py: a test module that imported ``conftest`` got whichever
folder's conftest Python had loaded first under that name.
"""

from __future__ import annotations

import asyncio
import os

from vmainspect.model import Frame

FIXTURES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fixtures")


def fixture_path(name: str) -> str:
    return os.path.join(FIXTURES, f"{name}.json")


def fixed_describe(vma):
    """A deterministic stand-in for symbolize.describe_vma (no host files read)."""
    if vma.path and vma.path.startswith("/") and ".so" in vma.path:
        return [f"test ELF description of {os.path.basename(vma.path)} at offset {vma.offset:#x}"]
    return None


def make_app(frames, *, live: bool = True, **kw):
    from vmainspect.tui.app import VmaInspectApp
    from vmainspect.tui.sources import FramesSource, SourceKind

    frames = [f if isinstance(f, Frame) else Frame(f) for f in frames]
    kw.setdefault("interval", 3600)
    kw.setdefault("describe", fixed_describe)
    kind = SourceKind.RECORDING if live else SourceKind.SNAPSHOT
    return VmaInspectApp(FramesSource(frames, title="test", kind=kind), **kw)


async def wait_frames(app, pilot, n: int = 1, timeout: float = 60.0) -> None:
    """Wait until ``n`` frames have been applied, and the screen has settled (the deadline is
    for a loaded machine: a passing test never waits for it)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while app.frames_seen < n:
        if loop.time() > deadline:
            raise TimeoutError(f"only {app.frames_seen} of {n} frames arrived")
        await asyncio.sleep(0.005)
    await pilot.pause()


async def next_frame(app, pilot) -> None:
    n = app.frames_seen
    app.request_frame()
    await wait_frames(app, pilot, n + 1)
