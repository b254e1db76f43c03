"""Boot Proxy configuration: CLI flags over FLEXLAB_BP_* environment over a YAML file over defaults.

Every setting has one name used in all three places: `--reply-delay-ms`,
`FLEXLAB_BP_REPLY_DELAY_MS`, `reply_delay_ms:` in YAML. `--help` lists them all.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from bootproxy.errors import ConfigError

__all__ = ["BootProxyConfig", "arch_map", "build_parser", "load_config"]

ENV_PREFIX = "FLEXLAB_BP_"
_LIST_SETTINGS = ("interfaces", "pxe_equivalents", "arch_files", "http_arch_files")


@dataclass
class BootProxyConfig:
    """Every setting of the Boot Proxy, with the defaults written out."""

    name: str = "bootproxy"
    interfaces: list[str] = field(default_factory=list)
    advertise_addr: str | None = None
    cp_url: str | None = None
    cp_token: str | None = None
    cp_ca: Path | None = None
    cache_path: Path = Path("/var/lib/flexlab-bootproxy/assignments.json")
    assignments_file: Path | None = None
    boot_root: Path | None = None
    http_host: str | None = None
    http_port: int = 8080
    tftp_port: int = 69
    dhcp_port: int = 67
    pxe_port: int = 4011
    metrics_host: str = "0.0.0.0"
    metrics_port: int = 9467
    reply_delay_ms: int = 0
    pxe_equivalents: list[str] = field(default_factory=list)
    bios_file: str = "undionly.kpxe"
    efi_file: str = "ipxe.efi"
    http_file: str = "ipxe.efi"
    arch_files: list[str] = field(default_factory=list)
    http_arch_files: list[str] = field(default_factory=list)
    conflict_watch: bool = True
    file_filter: str = "mac"
    longpoll_wait: float = 30.0
    heartbeat_interval: float = 15.0
    log_level: str = "info"


_HELP: dict[str, str] = {
    "name": "proxy name registered with the Control Plane (POST /api/v1/proxies)",
    "interfaces": "interface(s) to serve ProxyDHCP on; repeat or comma-separate (e.g. eth0,eth1)",
    "advertise_addr": "address put in option 54/siaddr instead of the interface's own "
    "(use when clients reach the proxy through NAT or a relay on another address)",
    "cp_url": "Control Plane base URL, e.g. http://10.0.0.2:8000; without it, "
    "--assignments-file or the cache is the only MAC list",
    "cp_token": "proxy bearer token from the Control Plane (prefer the env var)",
    "cp_ca": "PEM CA certificate(s) the Control Plane's HTTPS certificate must chain to "
    "(default: the system trust store); a certificate that does not verify is treated like "
    "an unreachable Control Plane: known MACs are served from the cache, unknown ones refused, "
    "and the reason is logged (cp_tls_failed) and shown in /healthz and /metrics",
    "cache_path": "where the last good assignment list is kept across restarts and CP outages",
    "assignments_file": "static assignments document (the API's JSON/YAML shape) "
    "instead of a Control Plane",
    "boot_root": "directory with undionly.kpxe, ipxe.efi ...; enables TFTP (and HTTP boot "
    "files when the HTTP server is available)",
    "http_host": "host put in HTTP boot URLs (default: the receiving interface's address)",
    "http_port": "port of the HTTP boot server, used in URLs handed to iPXE and HTTP clients",
    "tftp_port": "TFTP listen port",
    "dhcp_port": "ProxyDHCP port (67; change only for tests)",
    "pxe_port": "PXE boot server port (4011; change only for tests)",
    "metrics_host": "listen address for /metrics and /healthz",
    "metrics_port": "listen port for /metrics and /healthz (0 = any free port)",
    "reply_delay_ms": "delay every DHCP reply by this many ms, for ROMs that miss instant "
    "replies (TIME-4)",
    "pxe_equivalents": "extra option-60 prefixes treated as PXEClient, e.g. HW-Client",
    "bios_file": "TFTP boot file for BIOS clients (arch 0)",
    "efi_file": "TFTP boot file for UEFI x64 clients (arch 7 and 9)",
    "http_file": "file served to UEFI HTTP boot clients (arch 16) as an absolute URL",
    "arch_files": "more TFTP boot files as ARCH=FILE, e.g. 11=ipxe-arm64.efi,6=ipxe-i386.efi "
    "(architectures without a file get no answer)",
    "http_arch_files": "more HTTP boot files as ARCH=FILE, e.g. 19=ipxe-arm64.efi",
    "conflict_watch": "watch port 68 for other ProxyDHCP servers answering our MACs (true/false)",
    "file_filter": "mac: TFTP/HTTP boot files only for IPs whose MAC is served (SILENT-5; "
    "the IP is learnt from DHCP, relayed REQUESTs included, or the ARP table); off: files "
    "for anyone (scripts stay MAC-filtered)",
    "longpoll_wait": "seconds per assignments long-poll (?wait=, at most 60)",
    "heartbeat_interval": "seconds between heartbeats to the Control Plane",
    "log_level": "debug, info, warning or error (logs are JSON lines on stderr)",
}


def arch_map(items: list[str], setting: str = "arch_files") -> dict[int, str]:
    """Parse `ARCH=FILE` entries into {arch: file}; `ConfigError` names the bad entry."""
    out: dict[int, str] = {}
    for item in items:
        arch, sep, name = item.partition("=")
        if not sep or not arch.strip().isdigit() or not name.strip():
            raise ConfigError(f"{setting}: {item!r} is not ARCH=FILE (e.g. 11=ipxe-arm64.efi)")
        out[int(arch)] = name.strip()
    return out


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    """The CLI; every option defaults to None so the environment and the file can fill it.
    ``prog`` is how the user invoked it (usage lines); the console script's name if None."""
    parser = argparse.ArgumentParser(
        prog=prog or "flexlab-bootproxy",
        description=(
            "flexlab reference Boot Proxy: ProxyDHCP (67/4011), TFTP and HTTP boot for the "
            "machines the Control Plane assigned to this proxy. Each setting can also come "
            f"from the environment ({ENV_PREFIX}<NAME>, e.g. {ENV_PREFIX}CP_TOKEN) or a YAML "
            "file (--config); the command line wins, then the environment, then the file."
        ),
    )
    parser.add_argument(
        "--config", type=Path, default=None,
        help=f"YAML file with any of the settings below (env {ENV_PREFIX}CONFIG)",
    )
    for f in fields(BootProxyConfig):
        kwargs: dict[str, Any] = {"default": None, "help": _HELP[f.name], "dest": f.name}
        if f.name in _LIST_SETTINGS:
            kwargs["action"] = "append"
        parser.add_argument(_flag(f.name), **kwargs)
    return parser


def _split_list(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    out: list[str] = []
    for item in items:
        out += [part.strip() for part in str(item).split(",") if part.strip()]
    return out


def _coerce(name: str, value: Any, default: Any) -> Any:
    if name in _LIST_SETTINGS:
        return _split_list(value)
    if value is None:
        return None
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, Path) or name in ("assignments_file", "boot_root", "cp_ca"):
            return Path(str(value))
    except ValueError as exc:
        raise ConfigError(
            f"setting {name!r} = {value!r} is not a valid {type(default).__name__}; "
            f"see {_flag(name)} in --help"
        ) from exc
    return str(value)


def load_config(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None,
    prog: str | None = None,
) -> BootProxyConfig:
    """Build the configuration from `argv`, `environ` (default os.environ) and the YAML file."""
    env = os.environ if environ is None else environ
    args = vars(build_parser(prog).parse_args(list(argv) if argv is not None else None))
    config_path = args.pop("config") or env.get(ENV_PREFIX + "CONFIG")
    merged: dict[str, Any] = {}
    if config_path:
        try:
            doc = yaml.safe_load(Path(config_path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"cannot read config file {config_path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"config file {config_path} must be a YAML mapping")
        known = {f.name for f in fields(BootProxyConfig)}
        unknown = sorted(set(doc) - known)
        if unknown:
            raise ConfigError(
                f"config file {config_path}: unknown setting(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        merged.update(doc)
    defaults = BootProxyConfig()
    for f in fields(BootProxyConfig):
        env_value = env.get(ENV_PREFIX + f.name.upper())
        if env_value is not None:
            merged[f.name] = env_value
        if args.get(f.name) is not None:
            merged[f.name] = args[f.name]
    values = {
        name: _coerce(name, value, getattr(defaults, name)) for name, value in merged.items()
    }
    config = BootProxyConfig(**values)
    if config.longpoll_wait > 60:
        raise ConfigError("longpoll_wait is at most 60 s (the Control Plane's limit)")
    for name in ("arch_files", "http_arch_files"):
        arch_map(getattr(config, name), name)  # validate early, with the setting's name
    if config.file_filter not in ("mac", "off"):
        raise ConfigError(f"file_filter must be 'mac' or 'off', not {config.file_filter!r}")
    if config.reply_delay_ms < 0:
        raise ConfigError("reply_delay_ms must be >= 0")
    if config.cp_ca is not None and not (config.cp_url or "").lower().startswith("https://"):
        raise ConfigError(
            f"cp_ca is set but cp_url {config.cp_url!r} is not https://: the CA would "
            "verify nothing; use the Control Plane's https URL or drop cp_ca"
        )
    return config
