"""Nodes phoning home: registration with a join token, then Ready (and its DNS name).

With a `DnsUpdater` in the context, a node that reports Ready gets its hostname placed
in the site's DNS (RFC 2136); every attempt is recorded as a `dns.update` event and
never fails the request.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ..deps import ERRORS, Context, Credentials, Ctx, Who, need, path_mac
from ..errors import Forbidden
from ..models import MachineOut, RegisterIn, RegisterOut

router = APIRouter(prefix="/api/v1/nodes", tags=["nodes"], responses=ERRORS)


@router.post("/register", name="register", response_model=RegisterOut)
def register(body: RegisterIn, who: Who, creds: Credentials, ctx: Ctx) -> dict[str, Any]:
    """A node phones home with its join token and hardware facts.

    A failed requirement is data, not an error: HTTP 200 with
    `state: Rejected` and the reasons.
    """
    need(who, "join")
    assert creds is not None  # `who` resolved, so a token was sent
    return ctx.store.register(creds.credentials, body)


@router.post("/{mac}/ready", name="ready", response_model=MachineOut)
def ready(mac: str, who: Who, ctx: Ctx) -> dict[str, Any]:
    """A registered node reports it is ready (its node token)."""
    clean = path_mac(mac)
    need(who, "node", "admin")
    if who.kind == "node":
        if who.name != clean:
            raise Forbidden(f"this node token belongs to {who.name}, not {clean}")
        if who.state != "active":
            raise Forbidden("node token superseded by a newer registration; use the latest")
    machine = ctx.store.ready(clean)
    if ctx.dns is not None:
        _place_in_dns(ctx, machine)
    return machine


def node_address(machine: dict[str, Any]) -> str | None:
    """The IPv4 address a node reported on its booting NIC (else on any NIC)."""
    nics = (machine.get("facts") or {}).get("nics") or []
    on_boot_nic = [n.get("ipv4") for n in nics if n.get("mac") == machine["mac"]]
    for ip in [*on_boot_nic, *(n.get("ipv4") for n in nics)]:
        if ip:
            return str(ip)
    return None


def _place_in_dns(ctx: Context, machine: dict[str, Any]) -> None:
    """Put a Ready node's name in DNS and record the outcome; never fails the request."""
    assert ctx.dns is not None
    mac = machine["mac"]
    address = node_address(machine)
    if address is None:
        ctx.store.record_event("dns.update", mac, ok=False, fqdn=machine["hostname"],
                               address=None,
                               detail="the node reported no IPv4 address in its facts")
        return
    outcome = ctx.dns.add(machine["hostname"], address, previous=ctx.placed.get(mac))
    if outcome.ok:
        ctx.placed[mac] = address
    ctx.store.record_event("dns.update", mac, ok=outcome.ok, fqdn=outcome.fqdn,
                           address=outcome.address, detail=outcome.detail)
