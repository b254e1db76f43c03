"""The Boot Proxy image serves TFTP across a veth into its --network none container.

Topology, all in namespaces this test creates (prefix ``fltest``)::

    container (eth1 10.R.R.1) --veth-- [bridge in fltestX-sw] --veth-- fltestX-ok (served MAC)
                                                               \\-veth-- fltestX-no (not served)

The container runs the image's real entry point (``python3 -m bootproxy``)
with a static assignments file naming only the "ok" client's MAC.
"""

import hashlib
import json
import os
import random
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from harness.pytest_plugin import require

pytestmark = [pytest.mark.sim, pytest.mark.needs_root, pytest.mark.needs_docker,
              pytest.mark.needs_binary("nsenter", how="apt-get install util-linux")]

IMAGE = os.environ.get("FLEXLAB_BOOTPROXY_IMAGE", "flexlab/bootproxy:latest")
OK_MAC = "02:f1:00:00:00:01"
NO_MAC = "02:f1:00:00:00:02"
FILE = "undionly.kpxe"


def _docker(*args: str, check: bool = True,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check,
                          timeout=timeout)


def _require_image() -> None:
    """The image under test must be built (known only by asking Docker, so at run time)."""
    require(_docker("image", "inspect", IMAGE, check=False).returncode == 0,
            f"image {IMAGE} not built: make images (images/build.sh)")


def _wait_ready(container: str, timeout: float = 30.0) -> dict[str, object]:
    """Poll the container's stdout for the proxy's one JSON ready line."""
    deadline = time.monotonic() + timeout
    while True:
        logs = _docker("logs", container, check=False)
        for line in logs.stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and event.get("event") == "ready":
                return event
        state = _docker("inspect", "-f", "{{.State.Status}}", container, check=False).stdout
        if time.monotonic() > deadline or state.strip() == "exited":
            raise AssertionError(f"Boot Proxy container {container} not ready (state "
                                 f"{state.strip()}); stderr tail:\n{logs.stderr[-3000:]}")
        time.sleep(0.1)


def _in_ns(ns: str, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["nsenter", f"--net=/run/netns/{ns}", "--", *argv],
                          capture_output=True, text=True, timeout=timeout)


FETCH = """
import asyncio, hashlib, json, sys
from bootproxy.tftp import fetch, TransferError
async def main():
    try:
        r = await fetch(sys.argv[1], 69, sys.argv[2], json.loads(sys.argv[3]),
                        timeout=1.0, retries=2)
    except TransferError as exc:
        print(json.dumps({"error": str(exc), "code": exc.code}))
        return
    print(json.dumps({"sha256": hashlib.sha256(r.data).hexdigest(), "oack": r.oack,
                      "size": len(r.data)}))
asyncio.run(main())
"""


HTTP_GET = """
import hashlib, sys, urllib.error, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=5) as r:
        print(r.status, hashlib.sha256(r.read()).hexdigest())
except urllib.error.HTTPError as exc:
    print(exc.code)
"""


@pytest.fixture
def lab_id() -> Iterator[str]:
    yield "fltest" + secrets.token_hex(3)


def test_tftp_from_container_over_veth(tmp_path: Path, lab_id: str) -> None:
    _require_image()
    from pyroute2 import NetNS
    from pyroute2 import netns as pr_netns

    net = f"10.{random.randint(100, 250)}.{random.randint(0, 255)}"
    sw, ok, no = f"{lab_id}-sw", f"{lab_id}-ok", f"{lab_id}-no"
    container = f"{lab_id}-bp"
    conf = tmp_path / "conf"
    conf.mkdir()
    conf.chmod(0o755)
    (conf / "assignments.json").write_text(json.dumps({"revision": "1", "assignments": [
        {"mac": OK_MAC, "cluster": "c1", "hostname": "ok-1", "role": "worker",
         "profile": "p"}]}))
    made: list[str] = []
    try:
        start = (
            "while [ ! -e /etc/flexlab/go ]; do sleep 0.05; done; "
            "exec python3 -m bootproxy --name bp --interfaces eth1 "
            "--assignments-file /etc/flexlab/assignments.json --cache-path /tmp/a.json "
            "--metrics-port 0 --metrics-host 127.0.0.1"
        )
        _docker("run", "-d", "--name", container, "--network", "none",
                "--label", f"flexlab.lab={lab_id}", "-v", f"{conf}:/etc/flexlab",
                "--entrypoint", "/bin/sh", IMAGE, "-c", start)
        pid = int(_docker("inspect", "-f", "{{.State.Pid}}", container).stdout.strip())
        for ns in (sw, ok, no):
            pr_netns.create(ns)
            made.append(ns)
        with NetNS(sw) as s:
            s.link("add", ifname="br0", kind="bridge")
            br = s.link_lookup(ifname="br0")[0]
            s.link("set", index=br, state="up")
            s.link("add", ifname="p0", kind="veth",
                   peer={"ifname": "bp-eth1", "net_ns_pid": pid})
            s.link("add", ifname="p1", kind="veth", peer={"ifname": "eth0", "net_ns_fd": ok})
            s.link("add", ifname="p2", kind="veth", peer={"ifname": "eth0", "net_ns_fd": no})
            for port in ("p0", "p1", "p2"):
                idx = s.link_lookup(ifname=port)[0]
                s.link("set", index=idx, master=br, state="up")
        with NetNS(f"/proc/{pid}/ns/net") as c:
            idx = c.link_lookup(ifname="bp-eth1")[0]
            c.link("set", index=idx, ifname="eth1")
            c.addr("add", index=idx, address=f"{net}.1", prefixlen=24)
            c.link("set", index=idx, state="up")
        for ns, mac, host in ((ok, OK_MAC, 10), (no, NO_MAC, 11)):
            with NetNS(ns) as h:
                idx = h.link_lookup(ifname="eth0")[0]
                h.link("set", index=idx, address=mac)
                h.addr("add", index=idx, address=f"{net}.{host}", prefixlen=24)
                h.link("set", index=idx, state="up")
                h.link("set", index=h.link_lookup(ifname="lo")[0], state="up")
        (conf / "go").touch()
        ready = _wait_ready(container)
        assert ready.get("tftp_port") == 69, ready

        want = _docker("exec", container, "sha256sum", f"/srv/boot/{FILE}").stdout.split()[0]
        env_python = [sys.executable, "-c", FETCH, f"{net}.1", FILE]
        opts = json.dumps({"blksize": "1468", "tsize": "0", "windowsize": "4"})
        got = _in_ns(ok, [*env_python, opts])
        assert got.returncode == 0, got.stderr
        result = json.loads(got.stdout)
        assert result.get("sha256") == want, result
        assert result["oack"] == {"blksize": "1468", "tsize": str(result["size"]),
                                  "windowsize": "4"}

        # Debian's tftp-hpa client, plain RFC 1350, from the same served client.
        out = tmp_path / "hpa.bin"
        hpa = _in_ns(ok, ["tftp", "-m", "binary", f"{net}.1", "-c", "get", FILE, str(out)])
        assert hpa.returncode == 0 and out.exists(), hpa.stdout + hpa.stderr
        assert hashlib.sha256(out.read_bytes()).hexdigest() == want

        # SILENT-5: a MAC the proxy does not serve gets no answer at all.
        refused = json.loads(_in_ns(no, [*env_python, "{}"]).stdout)
        assert refused.get("code", "missing") is None, refused

        # HTTP boot file from the same container: served client 200, the other 404.
        http_port = ready.get("http_port")
        assert isinstance(http_port, int), ready
        efi = _docker("exec", container, "sha256sum", "/srv/boot/ipxe.efi").stdout.split()[0]
        url = f"http://{net}.1:{http_port}/ipxe.efi"
        served = _in_ns(ok, [sys.executable, "-c", HTTP_GET, url])
        assert served.stdout.split() == ["200", efi], served.stdout + served.stderr
        unserved = _in_ns(no, [sys.executable, "-c", HTTP_GET, url])
        assert unserved.stdout.split() == ["404"], unserved.stdout + unserved.stderr

        # /metrics of the image's own prometheus_client (Debian's), by Prometheus' parser
        metrics_url = f"http://127.0.0.1:{ready['metrics_port']}/metrics"
        page = _docker("exec", container, "python3", "-c",
                       f"import urllib.request; print(urllib.request.urlopen("
                       f"{metrics_url!r}, timeout=5).read().decode())").stdout
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for f in text_string_to_metric_families(page) for s in f.samples}
        assert samples[("bootproxy_tftp_transfers_total", (("result", "completed"),))] == 2
        assert samples[("bootproxy_tftp_errors_total", (("kind", "refused_client"),))] >= 1
        assert samples[("bootproxy_http_responses_total", (("status", "200"),))] == 1
        assert samples[("bootproxy_http_refused_total", ())] == 1
        assert any(name == "bootproxy_build_info" for name, _ in samples), page[:2000]
    finally:
        logs = _docker("logs", container, check=False)
        _docker("rm", "-f", container, check=False)
        for ns in made:
            pr_netns.remove(ns)
        if logs.returncode == 0:
            (tmp_path / "bootproxy.log").write_text(logs.stdout + logs.stderr)
