"""HTTP boot server for the Boot Proxy: iPXE scripts, boot files, cached kernel/initrd.

Wiring (from the app)::

    source = ControlPlaneSource(cp_url, proxy_token)          # or any BootSource
    http = HttpBootServer(
        HttpBootConfig(root=Path("/srv/boot"), cache_dir=Path("/var/cache/bootproxy"),
                       port=80, public_url="http://192.0.2.10"),
        source, allow_mac=assignments.serves)
    await http.start()
    ...
    http.counters.snapshot()   # for /metrics
    await http.stop()
"""

from bootproxy.httpboot.cache import ArtifactCache, CachedArtifact
from bootproxy.httpboot.counters import HttpCounters
from bootproxy.httpboot.errors import ArtifactError, BootDataError, HttpBootError, RequestError
from bootproxy.httpboot.ranges import Unsatisfiable, parse_range
from bootproxy.httpboot.script import BootData, render_script
from bootproxy.httpboot.server import AllowIpFn, AllowMacFn, HttpBootConfig, HttpBootServer
from bootproxy.httpboot.source import BootSource, ControlPlaneSource, NoControlPlane

__all__ = [
    "AllowIpFn",
    "AllowMacFn",
    "ArtifactCache",
    "ArtifactError",
    "BootData",
    "BootDataError",
    "BootSource",
    "CachedArtifact",
    "ControlPlaneSource",
    "HttpBootConfig",
    "HttpBootError",
    "HttpBootServer",
    "HttpCounters",
    "NoControlPlane",
    "RequestError",
    "Unsatisfiable",
    "parse_range",
    "render_script",
]
