"""The scenario file's typed model: plain data, validated, no side effects.

A scenario declares a site (segments, the site DHCP server, Boot Proxies, the
Control Plane), the clusters and machines that boot in it, timed steps, and
what must be true at the end. The JSON Schema for editors is generated from
these models (``flexlab schema``); unknown keys are errors.
"""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from harness.macs import normalize_mac
from harness.scenario.site_model import DnsSpec, NtpSpec, TlsFault, WanSpec

NAME = r"^[a-z][a-z0-9]{0,9}$"
Name = Annotated[str, Field(pattern=NAME, description="1-10 lower-case letters/digits")]

FIRMWARE_PROFILES = (
    "seabios-ipxe",   # SeaBIOS with the iPXE ROM: arch 0, user class iPXE
    "bios-pxe",       # a plain BIOS PXE ROM: needs undionly.kpxe first
    "uefi-x64",       # EDK2 UEFI x64 PXE: arch 7, 4011 from port 4011, tsize probe
    "uefi-http",      # EDK2 UEFI HTTP boot: HTTPClient, arch 16
    "intel-no97",     # an Intel-like ROM without option 97
    "hw-client",      # a ROM that sends vendor class HW-Client
    "ovmf-ipxe",      # OVMF running iPXE EFI from the NIC ROM (vm tier)
    "uefi-arm64",     # AAVMF (ARM64 UEFI) PXE: arch 11 (vm tier, qemu-system-aarch64)
)


class Strict(BaseModel):
    """Base: unknown keys are errors; values are frozen once loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Relay(Strict):
    """A DHCP relay (ip helper) joining this segment to the segment its servers live on."""

    upstream: Name = Field(description="segment where the DHCP server and Boot Proxy live")
    forwards_to: list[str] | None = Field(
        None, description="the servers on the upstream segment it forwards to ('site-dhcp', "
        "proxy names); default: all of them. A helper list without the Boot Proxy is a "
        "common site mistake")


class Snooping(Strict):
    """A DHCP-snooping switch: server replies from untrusted ports are dropped."""

    trusted: list[str] = Field(
        default_factory=list,
        description="components whose ports are trusted (e.g. site-dhcp, a proxy name)",
    )


class SegmentSpec(Strict):
    """An L2 domain."""

    name: Name
    relay: Relay | None = None
    snooping: Snooping | None = None
    ipv6_ra: bool = Field(True, description="send router advertisements (iPXE waits for one)")


class SiteDhcpSpec(Strict):
    """The site's own DHCP server (dnsmasq or ISC Kea), serving the given segments."""

    segment: Name
    kind: Literal["dnsmasq", "kea"] = Field(
        "dnsmasq", description="dnsmasq, or ISC Kea (with DDNS when dns.updates is dhcp)")
    sends_pxeclient: bool = Field(
        False, description="misconfigured site server that sends option 60 PXEClient (SITE-2)"
    )


class ProxySpec(Strict):
    """A Boot Proxy under test."""

    name: Name
    segments: list[Name] = Field(min_length=1)
    clusters: list[Name] = Field(default_factory=list, description="clusters it serves")
    kind: Literal["process", "container", "dnsmasq"] = Field(
        "container", description="our proxy as a container (the default: the image a site "
        "deploys) or a plain process (debugging), or dnsmasq proxy mode"
    )
    image: str | None = Field(None, description="Docker image (kind: container)")
    start: Literal["at-start", "by-step"] = "at-start"


class Fault(Strict):
    """A Control Plane fault, scoped to one endpoint (or '*')."""

    endpoint: str = "*"
    latency_ms: int = Field(0, ge=0, le=60_000)
    error_rate: float = Field(0.0, ge=0.0, le=1.0)
    down: bool = False
    wrong_answer: bool = False


class ControlPlaneSpec(Strict):
    """The Control Plane mock.

    ``location`` places it like a real site: ``site`` on a management segment reached by
    routing (standalone), ``cloud`` beyond the WAN router (hybrid). Unset, it keeps the
    lab's shortcut of one leg on every boot segment."""

    tls: bool = False
    faults: list[Fault] = Field(default_factory=list)
    location: Literal["site", "cloud"] | None = Field(
        None, description="site (management segment) or cloud (beyond the WAN); unset: the "
        "lab's shortcut, on every boot segment")
    tls_fault: TlsFault | None = Field(
        None, description="serve a certificate every client must refuse (wrong-ca, "
        "wrong-name, expired); implies tls")


class ClusterSpec(Strict):
    """A cluster the Control Plane knows."""

    name: Name
    mode: Literal["hybrid", "standalone"] = "standalone"
    environment: Literal["dev", "test", "prod"] = "test"
    expected_nodes: int | None = Field(None, ge=1, description="default: its machines' count")


class Facts(Strict):
    """Hardware an emulated machine reports (the VM's real hardware in the vm tier)."""

    arch: Literal["x86_64", "aarch64", "i686"] = "x86_64"
    cores: int = Field(2, ge=1, le=512)
    memory_gb: float = Field(4, gt=0)
    disk_gb: float = Field(20, ge=0)
    clock_skew_s: float = 0.0


class MachineSpec(Strict):
    """One machine, or ``count`` alike (named <name>1, <name>2 …)."""

    name: Name
    segment: Name
    cluster: Name | None = Field(None, description="None: a stranger no proxy may answer")
    firmware: str = Field("seabios-ipxe", description=", ".join(FIRMWARE_PROFILES))
    count: int = Field(1, ge=1, le=5000)
    nic: Literal["virtio", "e1000", "rtl8139"] = "virtio"
    facts: Facts = Field(default_factory=lambda: Facts())
    driver: Literal["sim", "vm"] | None = Field(None, description="default: the scenario's tier")
    macs: list[str] | None = Field(None, description="explicit MACs (default: derived)")
    role: Literal["control-plane", "worker"] = "worker"

    @field_validator("firmware")
    @classmethod
    def _known_firmware(cls, value: str) -> str:
        if value not in FIRMWARE_PROFILES:
            raise ValueError(f"unknown firmware {value!r}; one of {', '.join(FIRMWARE_PROFILES)}")
        return value

    @field_validator("macs")
    @classmethod
    def _mac_form(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        return [normalize_mac(m) for m in value]  # a MacError is a ValueError for pydantic

    @model_validator(mode="after")
    def _macs_match_count(self) -> MachineSpec:
        if self.macs is not None and len(self.macs) != self.count:
            raise ValueError(f"{len(self.macs)} macs given for count {self.count}")
        return self


class StepBase(Strict):
    """A timed action, ``at`` seconds after the scenario starts (scaled in the sim tier)."""

    at: float = Field(ge=0)


class PowerStep(StepBase):
    """Power machines on, off, or reset them (off, then on: a firmware retry)."""

    action: Literal["power_on", "power_off", "reset"]
    machines: list[str] = Field(min_length=1, description="machine names (all copies)")


class ControlPlaneStep(StepBase):
    """Stop or start the Control Plane, or clear every fault set on it."""

    action: Literal["stop_control_plane", "start_control_plane", "clear_faults"]


class ProxyStep(StepBase):
    """Start (or restart) or stop one Boot Proxy."""

    action: Literal["start_proxy", "stop_proxy"]
    proxy: Name


class LinkStep(StepBase):
    """Cut or restore one host's link on one segment."""

    action: Literal["cut_link", "restore_link"]
    host: str = Field(description="a proxy, a machine, 'site-dhcp' or 'cp'")
    segment: Name


class NetemStep(StepBase):
    """Impair one host's link: loss, and latency where the kernel has sch_netem."""

    action: Literal["netem"]
    host: str = Field(description="a proxy, a machine, 'site-dhcp' or 'cp'")
    segment: Name
    delay_ms: int = Field(0, ge=0)
    loss_pct: float = Field(0.0, ge=0, le=100)


class AssignStep(StepBase):
    """The Control Plane assigns machines to their clusters now: until this step it does
    not know them (machines powered on before an operator registered them)."""

    action: Literal["assign"]
    machines: list[str] = Field(min_length=1, description="machine names (all copies)")


class FaultStep(StepBase):
    """Set a Control Plane fault from this moment on."""

    action: Literal["set_fault"]
    fault: Fault


class WanStep(StepBase):
    """Take the site's WAN link down (an outage) or bring it back (needs ``wan:``)."""

    action: Literal["wan_down", "wan_up"]


Step = Annotated[
    PowerStep | ControlPlaneStep | ProxyStep | LinkStep | NetemStep | FaultStep | WanStep
    | AssignStep,
    Field(discriminator="action"),
]
STEP_TYPES: tuple[type[StepBase], ...] = (
    PowerStep, ControlPlaneStep, ProxyStep, LinkStep, NetemStep, FaultStep, WanStep,
    AssignStep)
#: every action, with the step type that carries it
STEP_ACTIONS: dict[str, type[StepBase]] = {
    action: cls for cls in STEP_TYPES
    for action in get_args(cls.model_fields["action"].annotation)
}


class MachineExpectation(Strict):
    """What must be true of a machine (all its copies) at the end."""

    name: str
    booted_via: Name | None = Field(None, description="the proxy that must have answered it")
    never_answered: bool = Field(False, description="no proxy answered it on any port")
    received_proxy_offer: bool | None = Field(
        None, description="whether the machine itself received a proxy offer (false with "
        "booted_via: the proxy answered but the reply was dropped on the way)")
    state: Literal["Ready", "Rejected", "Pending", "Booting", "Registered"] | None = None
    ready_within: float | None = Field(None, gt=0, description="seconds from power-on")
    reason_contains: str | None = Field(
        None, description="text in one of its reasons: the Control Plane's (why Rejected) "
        "or the machine's own error (PXE-E55 …)")
    dns: DnsExpectation | None = Field(
        None, description="its name in the site's DNS (needs dns:), asked of the site's "
        "BIND from a host on the boot LAN after the run")
    clock_within_s: float | None = Field(
        None, gt=0, description="its clock, as it reported it when it registered (after "
        "NTP), at most this many seconds off the Control Plane's")


class DnsExpectation(Strict):
    """A machine's name in the site's DNS at the end of the run."""

    resolves: bool = Field(
        True, description="true: its hostname's A record is its address (and the PTR of "
        "its address its name, where the site has a reverse zone); false: it does not")


class ClusterExpectation(Strict):
    """A cluster's end state."""

    name: Name
    ready: bool = True
    within: float | None = Field(
        None, gt=0, description="seconds from its first machine's power-on to the Control "
        "Plane's cluster.ready event (with ready: true)")

    @model_validator(mode="after")
    def _deadline_to_ready(self) -> ClusterExpectation:
        if self.within is not None and not self.ready:
            raise ValueError("within needs ready: true (it times the cluster becoming Ready)")
        return self


class ConflictExpectation(Strict):
    """A conflict that must be detected and reported to the Control Plane."""

    between: list[Name] = Field(min_length=2, max_length=2)


class SnoopingExpectation(Strict):
    """Which ports of a DHCP-snooping switch dropped DHCP server replies (none: [])."""

    segment: Name
    dropped_from: list[str] = Field(
        description="whose ports ('site-dhcp', proxy names) must have dropped replies; "
        "every other port must have dropped none")


class DiagnosisExpectation(Strict):
    """A rule that must FAIL saying this: the failure and its diagnosis, both expected."""

    rule: str = Field(description="a rule id, e.g. SITE-3")
    says: str = Field(min_length=1, description="text one of its FAIL findings contains")


class Expectations(Strict):
    """What the run must show."""

    rules: list[str] = Field(
        default_factory=lambda: ["MUST"],
        description="rule ids that must hold: each must pass somewhere and fail nowhere "
        "(a rule that never applied fails); 'MUST' means no MUST rule fails",
    )
    violations: list[str] = Field(
        default_factory=list,
        description="rule ids that must FAIL in this run (a defective party run on "
        "purpose); they do not count against 'MUST'",
    )
    machines: list[MachineExpectation] = Field(default_factory=list)
    clusters: list[ClusterExpectation] = Field(default_factory=list)
    conflicts: list[ConflictExpectation] = Field(default_factory=list)
    no_conflicts: bool = False
    snooping: list[SnoopingExpectation] = Field(default_factory=list)
    diagnoses: list[DiagnosisExpectation] = Field(default_factory=list)


class Scenario(Strict):
    """A whole scenario file."""

    schema_ref: str | None = Field(None, alias="$schema")
    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
    description: str = ""
    tier: Literal["sim", "vm"] = "sim"
    time_scale: float = Field(
        1.0, gt=0, le=1.0, description="firmware timer factor in the sim tier (CI speed)"
    )
    timeout: float = Field(300, gt=0, description="seconds before the run is failed")
    segments: list[SegmentSpec] = Field(min_length=1)
    site_dhcp: list[SiteDhcpSpec] = Field(default_factory=list)
    proxies: list[ProxySpec] = Field(default_factory=list)
    control_plane: ControlPlaneSpec = Field(default_factory=lambda: ControlPlaneSpec())
    clusters: list[ClusterSpec] = Field(default_factory=list)
    machines: list[MachineSpec] = Field(default_factory=list)
    steps: list[Step] = Field(default_factory=list)
    expect: Expectations = Field(default_factory=lambda: Expectations())
    wan: WanSpec | None = Field(None, description="a WAN router between the site and a "
                                "cloud Control Plane: NAT, outbound ports, private tunnel")
    dns: DnsSpec | None = Field(None, description="the site's DNS server (BIND, RFC 2136)")
    ntp: NtpSpec | None = Field(None, description="the site's time source (chrony)")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
