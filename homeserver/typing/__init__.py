"""Typing notifications: in memory, expiring, with their own stream."""
