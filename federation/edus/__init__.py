"""Ephemeral EDUs over federation: typing, read receipts, presence (``assembly.py``)."""
