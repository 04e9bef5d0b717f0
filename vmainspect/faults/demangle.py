"""Readable names for C++ (Itanium ABI) symbols, through the system's ``abi::__cxa_demangle``.

``_ZN7lecture6memory11touch_pagesEPcl`` becomes
``lecture::memory::touch_pages(char*, long)``, as ``perf report`` and
``c++filt`` print it. The demangler is libstdc++'s own, called through ctypes:
no dependency to install, the same code c++filt runs, and about 2 us a name
against 25 us for a pure-Python one (each distinct name is demangled once and
cached). See docs/faults.md for the measured alternatives.

Symbol names come from files a hostile user may control: a name longer than
``MAX_MANGLED`` is not demangled (gcc's demangler also bounds its own
recursion), and a result that is not printable text is dropped. Without
libstdc++ (a minimal container image), names stay as they are and
``available()`` says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any

MAX_MANGLED = 4096

_demangler: Any = None  # ctypes function pointers (their class is private)
_free: Any = None
_tried = False


def _load() -> bool:
    global _demangler, _free, _tried
    if _tried:
        return _demangler is not None
    _tried = True
    for name in ("libstdc++.so.6", ctypes.util.find_library("stdc++")):
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            fn = lib.__cxa_demangle
        except (OSError, AttributeError):
            continue
        fn.restype = ctypes.c_void_p  # a malloc()ed string, freed below
        fn.argtypes = [ctypes.c_char_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
        free = ctypes.CDLL(None).free
        free.argtypes = [ctypes.c_void_p]
        free.restype = None
        _demangler, _free = fn, free
        return True
    return False


def available() -> bool:
    """Whether C++ names can be demangled here (libstdc++ found)."""
    return _load()


@functools.lru_cache(maxsize=65536)
def demangle(name: str) -> str | None:
    """The readable form of an Itanium-mangled ``name``; None if it is not one (or cannot be read)."""
    if not name.startswith("_Z") or len(name) > MAX_MANGLED or not _load():
        return None
    assert _demangler is not None and _free is not None
    base, dot, suffix = name.partition(".")  # clone suffixes: foo.cold, foo.isra.0, foo.part.1
    status = ctypes.c_int(0)
    try:
        raw = base.encode("ascii")
    except UnicodeEncodeError:
        return None
    ptr = _demangler(raw, None, None, ctypes.byref(status))
    if not ptr:
        return None
    try:
        out = ctypes.string_at(ptr)
    finally:
        _free(ptr)
    if status.value != 0:
        return None
    text = out.decode("ascii", "replace")
    if not text.isprintable():
        return None
    return f"{text} [clone .{suffix}]" if dot else text


def readable(name: str) -> str:
    """``name`` demangled when it is a C++ name, else as it is."""
    return demangle(name) or name
