"""Power a machine on through its BMC's Redfish API, so certification needs no hands.

One system only: the URL names it (``https://bmc/redfish/v1/Systems/1``), or it is the
service root of a BMC that manages exactly one system. A BMC listing several systems is
refused rather than guessed at: powering on the wrong server is worse than asking.
The one-time boot override to PXE is best effort (some BMCs refuse it; the machine's own
boot order then decides), the reset is ``On`` for a machine that is off and
``ForceRestart`` for one already on, so it PXE-boots now either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from harness.certify.errors import CertifyError


@dataclass
class PowerOn:
    """What was done: the system, its power state before, the reset sent, any warning."""

    system: str
    power_state: str
    reset_type: str
    warnings: list[str] = field(default_factory=list)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CertifyError(f"--redfish {url!r}: want https://BMC[/redfish/v1/Systems/ID]")
    return urlunsplit((parts.scheme, parts.netloc, "", "", ""))


def _get(client: httpx.Client, path: str) -> dict[str, Any]:
    response = client.get(path)
    if response.status_code == 401:
        raise CertifyError("the BMC refused the credentials (401): check --bmc-user and "
                           "--bmc-password")
    if response.status_code >= 400:
        raise CertifyError(f"GET {path} on the BMC answered {response.status_code}")
    try:
        doc = response.json()
    except ValueError as exc:
        raise CertifyError(f"GET {path} on the BMC did not answer JSON") from exc
    if not isinstance(doc, dict):
        raise CertifyError(f"GET {path} on the BMC answered {type(doc).__name__}, not an object")
    return doc


def system_path(client: httpx.Client, url: str) -> str:
    """The one ComputerSystem ``url`` names (directly, or as the only member)."""
    path = urlsplit(url).path.rstrip("/") or "/redfish/v1"
    if "/Systems/" in path:
        return path
    if path in ("/redfish", "/redfish/v1", ""):
        path = "/redfish/v1/Systems"
    members = _get(client, path).get("Members") or []
    ids = [str(m.get("@odata.id")) for m in members if isinstance(m, dict)]
    if len(ids) != 1:
        raise CertifyError(
            f"the BMC manages {len(ids)} systems ({', '.join(ids) or 'none'}): name the one to "
            "power on, e.g. --redfish https://BMC/redfish/v1/Systems/ID")
    return ids[0]


def power_on(url: str, user: str, password: str, *, verify: bool = True,
             timeout: float = 20.0, pxe_once: bool = True) -> PowerOn:
    """Set a one-time PXE boot (best effort) and reset the system into it."""
    origin = _origin(url)
    with httpx.Client(base_url=origin, auth=(user, password), verify=verify, timeout=timeout,
                      headers={"Accept": "application/json"}) as client:
        try:
            path = system_path(client, url)
            system = _get(client, path)
            state = str(system.get("PowerState", "Unknown"))
            warnings: list[str] = []
            if pxe_once:
                patch = client.patch(path, json={"Boot": {
                    "BootSourceOverrideTarget": "Pxe", "BootSourceOverrideEnabled": "Once"}})
                if patch.status_code >= 400:
                    warnings.append(f"one-time PXE boot override refused ({patch.status_code}): "
                                    "the machine's boot order decides")
            action = (system.get("Actions") or {}).get("#ComputerSystem.Reset") or {}
            target = str(action.get("target") or f"{path}/Actions/ComputerSystem.Reset")
            reset = "ForceRestart" if state == "On" else "On"
            answer = client.post(target, json={"ResetType": reset})
            if answer.status_code >= 400:
                raise CertifyError(f"the BMC refused ComputerSystem.Reset {reset} "
                                   f"({answer.status_code}): {answer.text[:200]}")
        except httpx.HTTPError as exc:
            raise CertifyError(f"cannot reach the BMC at {origin}: {exc}") from exc
    return PowerOn(path, state, reset, warnings)
