"""Sync filters: the parsed model (``model``), ``event_fields`` (``fields``) and the
handler that stores and resolves them (``handler``)."""
