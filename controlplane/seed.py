"""Load a seed file (YAML or JSON) into a fresh or existing store at start-up.

A seed describes a site the way the API would build it, so a harness can
start a Control Plane that already knows its clusters, profiles, artifacts,
proxies and machines. Everything goes through the same pydantic models as the
API, so a seed is validated exactly like requests are. Existing objects are
skipped, so restarting with the same seed is harmless.

    clusters:  [{name, mode, expected_nodes, environment}]
    artifacts: {name: path}           # paths relative to the seed file
    profiles:  [{name, kernel, initrd, cmdline}]
    proxies:   [{name, segments, clusters, token?}]   # token fixed in advance
    machines:  [{mac, cluster, role, hostname, profile}]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError, Conflict
from .models import ClusterIn, MachineIn, ProfileIn, ProxyIn, artifact_name
from .store import Store


class SeedProxy(ProxyIn):
    """A proxy in a seed file; may fix its token so the harness knows it up front."""

    token: str | None = Field(default=None, min_length=16)


class Seed(BaseModel):
    """The whole seed document; unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")

    clusters: list[ClusterIn] = Field(default_factory=list)
    artifacts: dict[str, str] = Field(default_factory=dict)
    profiles: list[ProfileIn] = Field(default_factory=list)
    proxies: list[SeedProxy] = Field(default_factory=list)
    machines: list[MachineIn] = Field(default_factory=list)


def load_seed(path: str | Path) -> Seed:
    """Parse and validate a seed file; ConfigError names the file and the bad field."""
    file = Path(path)
    try:
        doc: Any = yaml.safe_load(file.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read seed file {file}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"seed file {file} is not YAML/JSON: {exc}") from exc
    try:
        return Seed.model_validate(doc or {})
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"seed file {file} is invalid: {problems}") from exc


def apply_seed(store: Store, seed: Seed, base: Path) -> dict[str, str]:
    """Create what the seed describes; return {proxy name: token} for new proxies."""
    existing_clusters = {c["name"] for c in store.list_clusters()}
    for cluster in seed.clusters:
        if cluster.name not in existing_clusters:
            store.create_cluster(cluster)
    for name, rel in seed.artifacts.items():
        try:
            artifact_name(name)
            data = (base / rel).read_bytes()
        except ValueError as exc:
            raise ConfigError(f"seed artifact: {exc}") from exc
        except OSError as exc:
            raise ConfigError(f"seed artifact {name}: cannot read {base / rel}: "
                              f"{exc.strerror}") from exc
        store.put_artifact(name, data)
    for profile in seed.profiles:
        store.create_profile(profile)
    tokens: dict[str, str] = {}
    known = {p["name"] for p in store.list_proxies()}
    for proxy in seed.proxies:
        if proxy.name in known and proxy.token is None:
            continue  # keep the token issued at the first start
        body = ProxyIn(name=proxy.name, segments=proxy.segments, clusters=proxy.clusters)
        tokens[proxy.name] = store.create_proxy(body, token=proxy.token)["token"]
    for machine in seed.machines:
        try:
            store.create_machine(machine)
        except Conflict:
            continue  # already defined: a restart with the same seed
    return tokens
