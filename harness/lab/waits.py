"""Composable readiness conditions on one running process, in the manner of wait strategies.

A process is ready when a list of conditions holds in order: its JSON ready line, a log
line, a UDP or TCP socket held by *this* PID (another process on the port never counts),
an HTTP 200, or any predicate on the PID. :func:`wait_for` polls each one; if the process
exits first it fails at once, and a timeout raises :class:`~harness.errors.WaitTimeout`
carrying what the condition last saw and the log tail, so a failed start explains itself.
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Callable
from typing import Any, Protocol

import httpx

from controlplane.client import default_trust
from harness.errors import ComponentError
from harness.lab.sockets import tcp_listening, udp_bound
from harness.wait import wait_until


class Watched(Protocol):
    """What a condition may look at: the process's PID, liveness and output."""

    name: str

    @property
    def pid(self) -> int: ...

    def running(self) -> bool: ...

    def returncode(self) -> int | None: ...

    def output(self) -> str: ...

    def log_tail(self, lines: int = 30) -> str: ...


class Condition(abc.ABC):
    """One thing that must hold before a process counts as ready.

    ``check`` returns something truthy (the ready record, a regex match, ``True``) once
    it holds; ``seen`` says what it observed last, for the error when it never does.
    """

    what: str = "be ready"

    @abc.abstractmethod
    def check(self, proc: Watched) -> Any:
        """The result once the condition holds, else None/False."""

    def seen(self) -> str:
        """What the last check observed (empty when the log tail says it all)."""
        return ""


class ReadyLine(Condition):
    """The process printed a JSON line ``{"event": "<event>", ...}``; returns that record.

    The Boot Proxy and the Control Plane announce readiness (and their ports, URL, CA)
    this way; the line is parsed once, as JSON.
    """

    def __init__(self, event: str = "ready") -> None:
        self.event = event
        self.what = f'print its {{"event": "{event}"}} line'

    def check(self, proc: Watched) -> dict[str, Any] | None:
        """The first JSON record with this event, or None."""
        for line in proc.output().splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("event") == self.event:
                return record
        return None


class LogLine(Condition):
    """The log matches ``pattern`` (multi-line regex); returns the match."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.what = f"log /{pattern}/"

    def check(self, proc: Watched) -> re.Match[str] | None:
        """The first match in the log so far."""
        return re.search(self.pattern, proc.output(), re.MULTILINE)


class Holds(Condition):
    """``predicate(pid)`` is true of the process (its own sockets, files, children)."""

    def __init__(self, predicate: Callable[[int], bool], what: str) -> None:
        self.predicate = predicate
        self.what = what

    def check(self, proc: Watched) -> bool:
        """The predicate on the PID."""
        return self.predicate(proc.pid)


class UdpBound(Holds):
    """The process itself holds UDP sockets bound to every one of ``ports``."""

    def __init__(self, *ports: int) -> None:
        super().__init__(lambda pid: all(udp_bound(pid, p) for p in ports),
                         "bind UDP " + " and ".join(map(str, ports)))


class TcpListening(Holds):
    """The process itself listens on TCP on every one of ``ports``."""

    def __init__(self, *ports: int) -> None:
        super().__init__(lambda pid: all(tcp_listening(pid, p) for p in ports),
                         "listen on TCP " + " and ".join(map(str, ports)))


class HttpOk(Condition):
    """``GET url`` answers 200 (and, with ``accept``, a body that ``accept`` approves).

    ``call`` runs the request somewhere else, e.g. ``NamespaceWorker.call`` inside a lab
    namespace; ``verify`` is httpx's (a CA bundle path, an SSL context, or False).
    """

    def __init__(self, url: str, *, verify: Any = True,
                 call: Callable[..., Any] | None = None,
                 accept: Callable[[httpx.Response], bool] | None = None,
                 what: str | None = None, request_timeout: float = 1.0) -> None:
        self.url = url
        self.verify = verify
        self.call = call
        self.accept = accept
        self.request_timeout = request_timeout
        self.what = what or f"answer HTTP 200 on {url}"
        self._last = "no request yet"

    def _get(self) -> httpx.Response:
        # verify=True would build httpx's default context again on every poll
        verify = default_trust() if self.verify is True else self.verify
        return httpx.get(self.url, timeout=self.request_timeout, verify=verify)

    def check(self, proc: Watched) -> bool:
        """One request; remembers the answer or error for the evidence."""
        try:
            answer: httpx.Response = self.call(self._get) if self.call else self._get()
        except httpx.HTTPError as exc:
            self._last = f"GET {self.url}: {type(exc).__name__}: {exc}"
            return False
        self._last = f"GET {self.url}: HTTP {answer.status_code} {answer.text[:200]!r}"
        if answer.status_code != 200:
            return False
        try:
            return self.accept is None or self.accept(answer)
        except ValueError:  # a body that is not what accept parses: not ready yet
            return False

    def seen(self) -> str:
        """The last answer or error."""
        return self._last


def wait_for(proc: Watched, *conditions: Condition, timeout: float) -> list[Any]:
    """Wait for each condition in order (each gets ``timeout``); return their results.

    Raises :class:`ComponentError` at once if the process exits first, and
    :class:`WaitTimeout` on timeout; both carry what was seen and the log tail.
    """
    results = []
    for cond in conditions:

        def evidence(cond: Condition = cond) -> str:
            seen = cond.seen()
            return (f"last seen: {seen}\n" if seen else "") + proc.log_tail()

        def probe(cond: Condition = cond, evidence: Callable[[], str] = evidence) -> Any:
            result = cond.check(proc)
            if result or proc.running():
                return result
            result = cond.check(proc)  # it exited: its last line may have landed since
            if not result:
                raise ComponentError(
                    f"{proc.name} exited with status {proc.returncode()} before it could "
                    f"{cond.what}:\n{evidence()}")
            return result

        results.append(wait_until(probe, timeout=timeout, what=f"{proc.name} to {cond.what}",
                                  evidence=evidence))
    return results
