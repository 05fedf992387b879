"""Search, user directory and push benchmark: the same workloads on our server and on
Synapse, through the public client-server API only.

- ``text``: deterministic chat text (Zipf-like words, planted rare words) and names;
- ``messages``: (a) message search latency and (b) the search index's growth;
- ``directory``: (c) user directory search;
- ``push``: (d) push rules and HTTP pushers in a large room, with ``gateway``;
- ``storage``: database, index and push-table sizes, read from outside the server;
- ``workloads``: the server config both get and the workloads' order;
- ``report``: the comparison table.

The entry point is ``bench/bench_search.py``; servers, accounts and the HTTP client
come from ``bench/client_api``.
"""
