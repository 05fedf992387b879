"""Client-API benchmark: the same HTTP workload against our server and Synapse.

Modules, one job each:

- ``databases``: a fresh SQLite file or PostgreSQL database per server;
- ``servers``: generating a config and running our server or Synapse on loopback;
- ``client``: a small Matrix client over aiohttp with persistent connections;
- ``workloads``: the measured workloads (send latency, send throughput, initial
  sync, sync wake-up);
- ``report``: the comparison table and the JSON record.

The entry point is ``bench/bench_client_api.py``.
"""
