"""Recordings: the JSON-lines file of frames and fault ticks, and the patches between frames."""
