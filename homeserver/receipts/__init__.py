"""Read receipts (``m.read``, ``m.read.private``) and the ``receipts`` stream."""
