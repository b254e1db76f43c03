"""``python -m controlplane`` as one child process, on this host or in a namespace.

LocalBoot (certify, site-check --serve) and the Control Plane's own tests run the
service through the harness's one process runner
(:class:`~harness.lab.process.LabProcess`), exactly as in production; the lab's
:class:`~harness.components.controlplane.ControlPlane` builds the same command line with
:func:`controlplane_argv`. Readiness is the service's ``{"event": "ready"}`` line (its
URL, its CA) and then a 200 from ``/healthz``; a failed start raises with the log tail.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from controlplane.client import verify_context
from harness.errors import ComponentError
from harness.lab.process import LabProcess
from harness.lab.waits import HttpOk, ReadyLine

ADMIN_TOKEN_ENV = "FLEXLAB_CP_ADMIN_TOKEN"


def controlplane_argv(listen: str, db: str | Path,
                      extra_args: list[str] | None = None) -> list[str]:
    """The service's command line. The admin token is not on it: any user on the host
    can read a process's command line (``ps``), only its owner its environment; see
    :func:`controlplane_env`."""
    return [sys.executable, "-m", "controlplane", "--listen", listen, "--db", str(db),
            *(extra_args or [])]


def controlplane_env(admin_token: str) -> dict[str, str]:
    """What the service's environment adds: its admin token (``FLEXLAB_CP_ADMIN_TOKEN``,
    which the service reads when ``--admin-token`` is not given)."""
    return {ADMIN_TOKEN_ENV: admin_token}


class ControlPlaneProcess(LabProcess):
    """One Control Plane child process; as a context manager it starts, waits, always stops.

    Its output goes to ``log_path`` (default: beside the database, ``<db stem>.log``).
    """

    def __init__(self, db: str | Path, admin_token: str, *, listen: str = "127.0.0.1:0",
                 extra_args: list[str] | None = None, netns: str | None = None,
                 env: dict[str, str] | None = None, log_path: Path | None = None) -> None:
        db = Path(db)
        super().__init__("controlplane", controlplane_argv(listen, db, extra_args),
                         log_path or db.with_name(f"{db.stem}.log"), netns,
                         env={**(env or {}), **controlplane_env(admin_token)})
        self.admin_token = admin_token
        self.ready: dict[str, Any] | None = None

    @property
    def url(self) -> str:
        """Base URL from the ready line."""
        if not self.ready:
            raise ComponentError("the Control Plane is not ready yet; call wait_ready() first")
        return str(self.ready["url"])

    def wait_ready(self, timeout: float = 20.0, verify: bool | str = True) -> str:
        """Wait for the ready line and a 200 from /healthz; return the URL.

        With TLS, ``verify`` defaults to the lab CA named in the ready line.
        """
        self.ready = self.wait(ReadyLine(), timeout=timeout)[0]
        if verify is True and self.ready.get("ca_cert"):
            verify = str(self.ready["ca_cert"])
        self.wait(HttpOk(f"{self.url}/healthz", verify=verify_context(verify)), timeout=timeout)
        return self.url

    def logs(self) -> list[str]:
        """Every line the service printed (its JSON log)."""
        return self.log_lines()
