"""Federation between real servers on loopback, over TLS: two of ours, and ours with
a real Synapse (the pinned PyPI release), on both of our database engines.

Run: ``.venv/bin/pytest tests/federation/interop -n 2 --dist loadgroup`` (each module
is one ``xdist_group``, so its module-scoped server pairs start once per worker).
``FEDERATION_PAIRINGS=synapse-synapse FEDERATION_ENGINES=sqlite`` runs the same
scenarios between two Synapses: a check of the scenarios themselves.
The harness: tests/support/federation.py (CA, our server), tests/support/synapse_server.py.
"""
