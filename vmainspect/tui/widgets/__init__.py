"""Reusable widgets of the vmainspect TUI (each with its own DEFAULT_CSS)."""
