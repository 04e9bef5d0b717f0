"""Snapshots: collect one from /proc, encode and decode it as JSON, diff two."""
