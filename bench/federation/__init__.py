"""The federation benchmark (``bench/bench_federation.py``): joining a large room
hosted on Synapse, inbound PDUs per second, outbound fan-out to many servers; each
on our server and on Synapse in one run.
"""
