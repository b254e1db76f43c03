"""Request and response bodies of the Control Plane API (v1).

These pydantic models are the contract in code: the committed
`openapi.json` is generated from them. Input models forbid unknown fields so
a typo in a client is a 422 naming the field instead of a silently ignored key.
Add fields, never rename or remove them (docs/CONTROLPLANE-API.md).
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_MAC_RE = re.compile(r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")
_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_ARTIFACT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def normalise_mac(value: str) -> str:
    """Return a MAC in lower-case colon form; raise ValueError saying the expected shape.

    The Control Plane's only MAC parser (its routes, models and faults use it): the
    service ships without the harness, so it does not use ``harness.macs``."""
    text = value.strip().lower()
    if not _MAC_RE.match(text):
        raise ValueError(f"{value!r} is not a MAC address; write it like 52:54:00:12:34:56")
    return text.replace("-", ":")


def dns_label(value: str) -> str:
    """Validate an RFC 1123 DNS label (lower-cased): hostnames and cluster names."""
    text = value.strip().lower()
    if not _LABEL_RE.match(text):
        raise ValueError(
            f"{value!r} is not a DNS label: use 1-63 of a-z, 0-9 and '-', "
            "not starting or ending with '-'"
        )
    return text


def artifact_name(value: str) -> str:
    """Validate an artifact name: a plain file name, no path separators."""
    if not _ARTIFACT_RE.match(value) or value in (".", ".."):
        raise ValueError(
            f"{value!r} is not an artifact name: use letters, digits, '.', '_', '-' (max 128)"
        )
    return value


Mac = Annotated[str, AfterValidator(normalise_mac)]
DnsLabel = Annotated[str, AfterValidator(dns_label)]
ArtifactName = Annotated[str, AfterValidator(artifact_name)]

Mode = Literal["hybrid", "standalone"]
Environment = Literal["dev", "test", "prod"]
Role = Literal["control-plane", "worker"]
MachineState = Literal["Pending", "Booting", "Registered", "Ready", "Rejected"]


class Strict(BaseModel):
    """Base for input bodies: unknown fields are errors."""

    model_config = ConfigDict(extra="forbid")


class ClusterIn(Strict):
    """POST /api/v1/clusters."""

    name: DnsLabel
    mode: Mode
    expected_nodes: int = Field(ge=1, le=100000)
    environment: Environment


class MissingNode(BaseModel):
    """One node a cluster still waits for, and why."""

    hostname: str | None
    mac: str | None
    state: str
    reasons: list[str]


class ClusterStatus(BaseModel):
    """Readiness of a cluster: Ready when `ready >= expected`."""

    phase: Literal["Ready", "NotReady"]
    ready: int
    expected: int
    missing: list[MissingNode]


class ClusterOut(BaseModel):
    """A cluster with its computed status."""

    name: str
    mode: Mode
    expected_nodes: int
    environment: Environment
    created_at: float
    status: ClusterStatus


class ProfileIn(Strict):
    """POST /api/v1/profiles: kernel/initrd are artifact names, cmdline a template."""

    name: DnsLabel
    kernel: ArtifactName
    initrd: ArtifactName
    cmdline: str = Field(max_length=4096)


class ProfileOut(BaseModel):
    """A stored boot profile."""

    name: str
    kernel: str
    initrd: str
    cmdline: str


class MachineIn(Strict):
    """POST /api/v1/machines: a machine enters the life cycle as Pending."""

    mac: Mac
    cluster: DnsLabel
    role: Role
    hostname: DnsLabel
    profile: DnsLabel


class Disk(Strict):
    """One block device in the node's hardware facts."""

    name: str = Field(min_length=1, max_length=64)
    size_bytes: int = Field(ge=0)


class Nic(Strict):
    """One network interface in the node's hardware facts.

    `mac` is the link-layer address as the kernel shows it. It is not held to
    the 6-byte MAC form: tunnel and InfiniBand devices report other lengths,
    and one odd NIC must not make the whole registration fail.
    """

    name: str = Field(min_length=1, max_length=64)
    mac: Annotated[str, AfterValidator(str.lower)] = Field(max_length=64)
    ipv4: IPv4Address | None = Field(
        None, description="the address the node got on this NIC; the Control Plane puts it "
        "in the site's DNS when the node is Ready (if DNS updates are configured)")


class Facts(Strict):
    """Hardware facts a node agent reports when it phones home."""

    arch: str = Field(max_length=32)
    cpu_cores: int = Field(ge=0)
    memory_bytes: int = Field(ge=0)
    disks: list[Disk] = Field(max_length=256)
    nics: list[Nic] = Field(max_length=256)
    firmware: Literal["efi", "bios"]
    vendor: str = Field(max_length=256)
    clock_unix: float
    clock_source: Literal["ntp", "http"] | None = Field(
        None, description="how the node measured clock_offset_s: 'ntp' after syncing from "
        "the site's time source (DHCP option 42); 'http' where the site offers no NTP, by a "
        "two-way exchange with the Control Plane's GET /api/v1/time (clock_error_s then "
        "bounds the measurement)")
    clock_server: str | None = Field(
        None, max_length=256, description="what clock_offset_s was measured against: the "
        "NTP server, or the time URL for 'http'")
    clock_offset_s: float | None = Field(
        None, allow_inf_nan=False, description="the node's clock minus the reference's, "
        "measured on the node without changing the clock; judged instead of clock_unix, "
        "which also carries the request's transit time")
    clock_error_s: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="with clock_source 'http' (and only "
        "then): half the round trip of the exchange clock_offset_s comes from, the most it "
        "can be off; the clock is rejected only when it is beyond the limit by more")

    @model_validator(mode="after")
    def _offset_with_source(self) -> Facts:
        """A measured offset is only judged with what it was measured against, and a
        two-way HTTP one only with its error bound (without it, a slow exchange could
        not be told from a skewed clock)."""
        given = (self.clock_source is not None, self.clock_server is not None,
                 self.clock_offset_s is not None)
        if any(given) and not all(given):
            raise ValueError("clock_source, clock_server and clock_offset_s go together")
        if (self.clock_source == "http") != (self.clock_error_s is not None):
            raise ValueError("clock_error_s goes with clock_source 'http', and only with it")
        return self


class MachineOut(BaseModel):
    """A machine with its life-cycle state; never carries tokens."""

    mac: str
    cluster: str
    role: Role
    hostname: str
    profile: str
    state: MachineState
    reasons: list[str]
    facts: dict[str, Any] | None
    updated_at: float


class ProxyIn(Strict):
    """POST /api/v1/proxies: register a Boot Proxy and the clusters it serves."""

    name: DnsLabel
    segments: list[str] = Field(default_factory=list, max_length=256)
    clusters: list[DnsLabel] = Field(default_factory=list, max_length=1024)


class ProxyToken(BaseModel):
    """The answer to a proxy registration: the token is shown only once."""

    name: str
    token: str


class Heartbeat(Strict):
    """POST /api/v1/proxies/{name}/heartbeat."""

    version: str = Field(max_length=128)
    segments: list[str] = Field(default_factory=list, max_length=256)


class ProxyOut(BaseModel):
    """A registered proxy as the admin sees it (no token)."""

    name: str
    segments: list[str]
    clusters: list[str]
    version: str | None
    last_heartbeat: float | None


class Assignment(BaseModel):
    """One MAC a proxy serves, with the profile to boot it with."""

    mac: str
    cluster: str
    hostname: str
    role: str
    profile: str


class Assignments(BaseModel):
    """The assignments feed of one proxy; `revision` grows with every store change."""

    revision: int
    assignments: list[Assignment]


class BootData(BaseModel):
    """What a proxy needs to build a machine's iPXE script; mints a one-time join token."""

    mac: str
    hostname: str
    cluster: str
    kernel: str
    initrd: str
    cmdline: str
    join_token: str
    kernel_url: str
    initrd_url: str
    kernel_sha256: str | None
    initrd_sha256: str | None


class RegisterIn(Strict):
    """POST /api/v1/nodes/register (join token)."""

    mac: Mac
    facts: Facts


class RegisterOut(BaseModel):
    """Registration outcome; a rejection is data (HTTP 200), with reasons."""

    state: Literal["Registered", "Rejected"]
    node_token: str | None = None
    reasons: list[str] = Field(default_factory=list)


class BootArchIn(Strict):
    """POST /api/v1/machines/{mac}/boot-arch: the PXE architecture a proxy saw it boot as."""

    pxe_arch: int = Field(ge=0, le=65535, description="DHCP option 93 (CLI-3)")
    segment: str = Field("", max_length=128)


class ConflictIn(Strict):
    """POST /api/v1/conflicts: another ProxyDHCP answered a MAC this proxy serves."""

    mac: Mac
    other_server: str = Field(max_length=64)
    segment: str = Field(max_length=128)
    seen_at: float


class ConflictOut(BaseModel):
    """A stored conflict report, with the proxy that sent it."""

    id: int
    proxy: str
    mac: str
    other_server: str
    segment: str
    seen_at: float
    received_at: float


class Event(BaseModel):
    """One entry of the append-only event log."""

    seq: int
    time: float
    kind: str
    subject: str
    data: dict[str, Any]


class FaultIn(Strict):
    """PUT /api/v1/faults: a fault scoped to one route name, or `*` for all."""

    endpoint: str = Field(min_length=1, max_length=64)
    latency_ms: int = Field(default=0, ge=0, le=120000)
    error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    down: bool = False
    wrong_answer: bool = False


class Faults(BaseModel):
    """The faults now active, by route name."""

    faults: list[FaultIn]
    endpoints: list[str]


class ArtifactOut(BaseModel):
    """An uploaded artifact's metadata."""

    name: str
    size: int
    sha256: str


class TimeOut(BaseModel):
    """The Control Plane's clock."""

    unix: float


class Health(BaseModel):
    """Liveness answer."""

    status: str


class ErrorBody(BaseModel):
    """Every error answer: a short kind and a sentence saying what to do."""

    error: str
    detail: str
    fields: list[dict[str, Any]] | None = None


class Ok(BaseModel):
    """A write that has nothing else to say."""

    ok: bool = True
