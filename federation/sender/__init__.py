"""Outbound federation: per-destination queues of PDUs and EDUs (``sender.py``)."""
