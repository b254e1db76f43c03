"""Naming rules, written down once: every lab resource carries the lab id.

- lab id: ``fl`` + 5 lower-case letters/digits, e.g. ``fl3k9xq``
- the lab's switch namespace (holds the bridges): ``<id>``
- a host's namespace: ``<id>-<host>``
- inside the switch namespace: bridge ``br-<segment>``, host-side veth ``<host>.<n>``
  (names only need to be unique inside that namespace)
- inside a host namespace: ``eth0``, ``eth1``, … in declaration order
- temp dir: ``/tmp/flexlab-<id>``; registry entry: ``/run/flexlab/labs/<id>.json``
- Docker label ``io.flexlab.lab=<id>`` (reverse-DNS, as Docker asks of tools; before
  2026-12 ``flexlab.lab``, still found by ``flexlab clean`` and ``flexlab inspect``);
  libvirt metadata ``<flexlab:lab>id</flexlab:lab>`` in the ``https://flexlab.dev/ns/1``
  namespace
"""

from __future__ import annotations

import re
import secrets
import string
from pathlib import Path

LAB_ID_RE = re.compile(r"^fl[a-z0-9]{5}$")
REGISTRY_DIR = Path("/run/flexlab/labs")
DOCKER_LABEL = "io.flexlab.lab"
LEGACY_DOCKER_LABELS = ("flexlab.lab",)  # written by older flexlab; read, never written
DOCKER_LABELS = (DOCKER_LABEL, *LEGACY_DOCKER_LABELS)
_ALPHABET = string.ascii_lowercase + string.digits


def new_lab_id() -> str:
    """A fresh short lab id; random so that labs run side by side on one host."""
    return "fl" + "".join(secrets.choice(_ALPHABET) for _ in range(5))


def is_lab_id(text: str) -> bool:
    """True if ``text`` has the shape of a lab id."""
    return bool(LAB_ID_RE.match(text))


def switch_ns(lab_id: str) -> str:
    """Name of the namespace that holds the lab's bridges."""
    return lab_id


def host_ns(lab_id: str, host: str) -> str:
    """Name of a host's namespace."""
    return f"{lab_id}-{host}"


def bridge(segment: str) -> str:
    """Bridge name of a segment (inside the switch namespace)."""
    return f"br-{segment}"


def switch_port(host: str, index: int) -> str:
    """Switch-side veth name of a host's ``index``-th link."""
    return f"{host}.{index}"


def host_iface(index: int) -> str:
    """Host-side interface name of its ``index``-th link."""
    return f"eth{index}"


def temp_dir(lab_id: str) -> Path:
    """The lab's scratch directory (configs, lease files)."""
    return Path("/tmp") / f"flexlab-{lab_id}"


def ram_dir(lab_id: str) -> Path:
    """The lab's scratch directory in RAM (tmpfs), for files a daemon fsyncs on every
    change: site dnsmasq rewrites and fsyncs its whole lease file after each ACK, and
    on a disk shared with other work that fsync (~13 ms measured) caps the site at
    ~75 ACKs/s — the lab's DHCP would be timing the disk."""
    return Path("/dev/shm") / f"flexlab-{lab_id}"
