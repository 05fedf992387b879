"""End-to-end encryption benchmark: the same key and to-device workloads on our
server and on Synapse.

- ``devices``: devices with real Ed25519 keys, one-time keys, cross-signing keys;
- ``to_device``: sending to-device messages and draining an inbox through ``/sync``;
- ``workloads``: setup and the measured workloads (a)-(d);
- ``report``: the comparison table.

The entry point is ``bench/bench_e2ee.py``; servers, accounts and the HTTP client
come from ``bench/client_api``.
"""
