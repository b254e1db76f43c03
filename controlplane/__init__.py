"""The mocked KubeFlex Control Plane: a real HTTP service with an SQLite store.

It is a mock only in that flexlab owns it and records everything for tests;
the Boot Proxies and node agents talk to it over the API in
docs/CONTROLPLANE-API.md. Start it with `python -m controlplane`.
"""

__version__ = "1.0.0"
