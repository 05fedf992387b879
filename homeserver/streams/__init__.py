"""Streams: positions that only move forward, the sync token made of them, and the
notifier that wakes whoever waits on them."""
