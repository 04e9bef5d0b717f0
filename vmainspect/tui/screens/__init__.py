"""Screens of the vmainspect TUI: help, go to address, process picker."""
