"""Rooms: the local event pipeline (build, check, persist, notify) and the room rules."""
