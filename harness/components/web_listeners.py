"""An "internet" host's web servers on ports 80, 443 and 8888, and a firewall that blocks one.

The outbound-ports check needs something to connect to and something in the way: this
module gives the lab both. :class:`WebListeners` runs one tiny HTTP server per port in
one process (``python -m harness.components.web_listeners --port 80 --port 443``); each
answers ``GET /healthz`` with ``{"status": "ok"}`` (so it also stands in for a Control
Plane's health check) and any other path with a line naming the port. Port 443 speaks
plain HTTP: the check only needs the TCP handshake. :func:`block_tcp_port` drops TCP to
one port of one lab host in the lab's switch namespace, as a site firewall that silently
drops packets would.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness.components.base import Component
from harness.components.standalone import serve_until_interrupted
from harness.lab.lab import Lab
from harness.lab.waits import TcpListening

DEFAULT_PORTS = (80, 443, 8888)


class _Handler(BaseHTTPRequestHandler):
    server_version = "flexlab-web-listener"

    @property
    def port(self) -> int:
        """The port this request came in on."""
        return int(self.connection.getsockname()[1])

    def do_GET(self) -> None:
        port = self.port
        if self.path.split("?")[0] == "/healthz":
            body = json.dumps({"status": "ok"}).encode()
            kind = "application/json"
        else:
            body = f"flexlab web listener on port {port}\n".encode()
            kind = "text/plain"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        # one line per request on stdout: the component log is the evidence
        print(f"{self.client_address[0]} port {self.port} "
              f"{format % args}", flush=True)


class HttpListeners:
    """One threaded HTTP server per port on ``bind``; :meth:`close` stops them all."""

    def __init__(self, ports: tuple[int, ...] | list[int], bind: str = "0.0.0.0") -> None:
        self.servers: list[ThreadingHTTPServer] = []
        try:
            for port in ports:
                self.servers.append(ThreadingHTTPServer((bind, port), _Handler))
        except BaseException:
            self.close()
            raise
        self._threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                                          daemon=True) for s in self.servers]

    @property
    def ports(self) -> list[int]:
        """The ports actually bound (0 in the request picks a free one)."""
        return [s.server_address[1] for s in self.servers]

    def start(self) -> HttpListeners:
        """Serve in background threads; returns self."""
        for thread in self._threads:
            thread.start()
        return self

    def close(self) -> None:
        """Stop serving and close every socket."""
        for server, thread in zip(self.servers, getattr(self, "_threads", []), strict=False):
            if thread.is_alive():
                server.shutdown()
        for server in self.servers:
            server.server_close()


class WebListeners(Component):
    """HTTP servers on ``ports`` in lab host ``host`` (the lab's stand-in for the internet)."""

    def __init__(self, lab: Lab, host: str, ports: tuple[int, ...] | list[int] = DEFAULT_PORTS,
                 *, name: str | None = None) -> None:
        self.lab = lab
        self.host = host
        self.ports = list(ports)
        self.name = name or f"web-{host}"

    def start(self) -> None:
        """Launch the listeners' process in the host's namespace."""
        argv = [sys.executable, "-m", "harness.components.web_listeners"]
        for port in self.ports:
            argv += ["--port", str(port)]
        self.process = self.lab.start_process(self.name, argv, self.host)

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Ready when this process listens on every port."""
        self.wait_for(TcpListening(*self.ports), timeout=timeout)


def block_tcp_port(lab: Lab, host: str, segment: str, port: int) -> str:
    """Drop TCP to ``port`` on frames bridged towards ``host`` on ``segment``; returns the
    nftables table name (for :func:`unblock`). The rule lives in the lab's switch namespace,
    so only this lab's traffic is touched; SYNs vanish and a client's connect times out."""
    info = lab.link(host, segment)
    table = f"block_{host}_{info.index}_{port}"
    script = lab.temp_dir / f"{table}.nft"
    script.write_text(
        f"table bridge {table} {{\n  chain forward {{\n"
        "    type filter hook forward priority -5; policy accept;\n"
        f'    oifname "{info.switch_port}" ether type ip tcp dport {port} counter drop\n'
        f'    oifname "{info.switch_port}" ether type ip6 tcp dport {port} counter drop\n'
        "  }\n}\n")
    lab.run(None, ["nft", "-f", str(script)])
    return table


def dropped_packets(lab: Lab, table: str) -> int:
    """How many packets a :func:`block_tcp_port` rule dropped (evidence that it worked)."""
    out = lab.run(None, ["nft", "list", "table", "bridge", table])
    return sum(int(part.split()[0]) for part in out.split("counter packets ")[1:])


def unblock(lab: Lab, table: str) -> None:
    """Remove a rule made by :func:`block_tcp_port`."""
    lab.run(None, ["nft", "delete", "table", "bridge", table])


def main(argv: list[str] | None = None) -> int:
    """``python -m harness.components.web_listeners --port 80 --port 443 [--bind ADDR]``."""
    parser = argparse.ArgumentParser(description="tiny HTTP servers, one per port")
    parser.add_argument("--port", type=int, action="append", default=[])
    parser.add_argument("--bind", default="0.0.0.0")
    args = parser.parse_args(argv)
    listeners = HttpListeners(args.port or list(DEFAULT_PORTS), args.bind).start()
    print(f"web listeners on {args.bind} ports {listeners.ports}", flush=True)
    return serve_until_interrupted(threading.Event().wait, listeners.close)


if __name__ == "__main__":
    sys.exit(main())
