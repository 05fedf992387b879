"""Message search: the index kept from the events stream, and ``POST /search``."""
