"""Where this process's Docker engine is, as the docker CLI and SDK will reach it.

Clean-up and ``flexlab inspect`` ask the engine named by ``DOCKER_HOST`` (else the
local socket). Checking a fixed ``/var/run/docker.sock`` instead made a run whose
``DOCKER_HOST`` points at a socket that does not exist try ``docker ps`` there, fail,
and keep its lab's registry record for ever, although no engine, and so no container
of that lab, can be behind a socket file that is not there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

LOCAL_ENDPOINT = "unix:///var/run/docker.sock"


def docker_endpoint() -> str:
    """The engine address the docker CLI and SDK use: ``DOCKER_HOST``, else the local socket."""
    return os.environ.get("DOCKER_HOST") or LOCAL_ENDPOINT


def engine_can_exist(endpoint: str | None = None) -> bool:
    """False only when no engine can be behind ``endpoint``: no ``docker`` program, or a
    unix socket whose file is absent. True says an engine may answer, not that it does:
    a failed query must still be reported."""
    if shutil.which("docker") is None:
        return False
    where = endpoint or docker_endpoint()
    if where.startswith("unix://"):
        return Path(where.removeprefix("unix://")).exists()
    return True
