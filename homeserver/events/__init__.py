"""The room event library: pure functions and data, no I/O.

Room versions, canonical JSON, hashing and signing, redaction, PDU validation,
authorisation rules and state resolution.  Everything that touches events trusts
this package, so it is tested against the spec's vectors and with property tests.
"""
