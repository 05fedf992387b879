"""Unread notification counts, derived from read marks and the default push rules."""
