"""Media benchmark: uploads, downloads and thumbnails, our server vs Synapse.

Modules, one job each:

- ``files``: the test files, generated once per run from a fixed seed;
- ``http``: upload, download and thumbnail requests over aiohttp;
- ``workloads``: the timed phases on one server;
- ``report``: the comparison table and the ratios.

The entry point is ``bench/bench_media.py``.
"""
