"""The Control Plane's state in SQLite (stdlib sqlite3, WAL).

One connection guarded by a lock serves every thread of the process: each
write is one `BEGIN IMMEDIATE` transaction, so concurrent requests (and a
second process on the same file, via WAL and a busy timeout) never lose an
update. Tokens are stored as SHA-256 hashes only. Every change appends to the
event log, whose last sequence number doubles as the store's revision; the
assignments long-poll is woken through the `on_change` callbacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import Conflict, Forbidden, InvalidReference, NotFound
from .models import (
    ClusterIn,
    ConflictIn,
    Heartbeat,
    MachineIn,
    ProfileIn,
    ProxyIn,
    RegisterIn,
)
from .requirements import boot_arch_reasons, check_requirements

SCHEMA = """
CREATE TABLE IF NOT EXISTS clusters (
    name TEXT PRIMARY KEY, mode TEXT NOT NULL, expected_nodes INTEGER NOT NULL,
    environment TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS profiles (
    name TEXT PRIMARY KEY, kernel TEXT NOT NULL, initrd TEXT NOT NULL, cmdline TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS artifacts (
    name TEXT PRIMARY KEY, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
    uploaded_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS machines (
    mac TEXT PRIMARY KEY, cluster TEXT NOT NULL REFERENCES clusters(name),
    role TEXT NOT NULL, hostname TEXT NOT NULL UNIQUE,
    profile TEXT NOT NULL REFERENCES profiles(name), state TEXT NOT NULL,
    reasons TEXT NOT NULL, facts TEXT, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS proxies (
    name TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, segments TEXT NOT NULL,
    clusters TEXT NOT NULL, version TEXT, last_heartbeat REAL);
CREATE TABLE IF NOT EXISTS tokens (
    hash TEXT PRIMARY KEY, kind TEXT NOT NULL, mac TEXT NOT NULL, state TEXT NOT NULL,
    created_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tokens_mac ON tokens(mac, kind, state);
CREATE TABLE IF NOT EXISTS conflicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT, proxy TEXT NOT NULL, mac TEXT NOT NULL,
    other_server TEXT NOT NULL, segment TEXT NOT NULL, seen_at REAL NOT NULL,
    received_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, time REAL NOT NULL, kind TEXT NOT NULL,
    subject TEXT NOT NULL, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS assignment_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);
INSERT OR IGNORE INTO assignment_generation VALUES (1, 0);
""" + "".join(
    f"CREATE TRIGGER IF NOT EXISTS {name} AFTER {event} ON {table} "
    "BEGIN UPDATE assignment_generation SET n = n + 1; END;\n"
    for name, event, table in (
        ("machine_added", "INSERT", "machines"),
        ("machine_removed", "DELETE", "machines"),
        ("machine_reassigned", "UPDATE OF mac, cluster, hostname, role, profile", "machines"),
        ("proxy_added", "INSERT", "proxies"),
        ("proxy_removed", "DELETE", "proxies"),
        ("proxy_reassigned", "UPDATE OF name, clusters", "proxies"),
    )
)
# What a proxy's assignments are made of (see Store.assignments) changed: the triggers
# count it in the database itself, so a write by any code path, or by a second process
# on the same file, moves the count the cached assignments are checked against.

JOIN = "join"
NODE = "node"


def token_hash(token: str) -> str:
    """The stored form of a token: never keep the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(kind: str) -> str:
    """A fresh random token; the prefix names its kind to make logs readable."""
    return f"fl{kind}_{secrets.token_urlsafe(24)}"


@dataclass(frozen=True)
class Principal:
    """Who a bearer token belongs to: admin, a proxy (by name), or a node (by MAC)."""

    kind: str  # "admin" | "proxy" | "join" | "node"
    name: str = ""  # proxy name, or MAC for join/node tokens
    state: str = "active"  # token state for join/node tokens: active | used | revoked


class Store:
    """All Control Plane state; thread-safe, one transaction per write."""

    def __init__(self, path: str | Path, clock: Callable[[], float] = time.time,
                 log: Callable[..., None] | None = None) -> None:
        self.path = Path(path)
        self.clock = clock
        self._log = log
        self._pending: list[dict[str, Any]] = []
        self.artifact_dir = self.path.with_name(self.path.name + ".artifacts")
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            str(self.path), check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA foreign_keys=ON")
        self._db.executescript(SCHEMA)
        self._listeners: list[Callable[[], None]] = []
        # proxy -> (assignment generation, items, digest); see assignments()
        self._assigned: dict[str, tuple[int, list[dict[str, str]], str]] = {}

    # -- plumbing -----------------------------------------------------------

    def close(self) -> None:
        """Close the database; the file (and its WAL) stay for the next start."""
        with self._lock:
            self._db.close()

    def on_change(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the writing thread) after every committed write."""
        self._listeners.append(callback)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._pending = []
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                self._pending = []
                raise
            self._db.execute("COMMIT")
            committed, self._pending = self._pending, []
        if self._log is not None:
            for record in committed:
                self._log("store_event", **record)
        for callback in self._listeners:
            callback()

    def _read(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._db.execute(sql, args))

    def _event(self, db: sqlite3.Connection, kind: str, subject: str, **data: Any) -> int:
        cur = db.execute(
            "INSERT INTO events (time, kind, subject, data) VALUES (?, ?, ?, ?)",
            (self.clock(), kind, subject, json.dumps(data, sort_keys=True)),
        )
        seq = int(cur.lastrowid or 0)
        self._pending.append({"seq": seq, "kind": kind, "subject": subject, "data": data})
        return seq

    def record_event(self, kind: str, subject: str, **data: Any) -> int:
        """Append one event (used for things outside the store, such as faults)."""
        with self._tx() as db:
            return self._event(db, kind, subject, **data)

    def revision(self) -> int:
        """The store's revision: the sequence number of the last event."""
        rows = self._read("SELECT COALESCE(MAX(seq), 0) AS rev FROM events")
        return int(rows[0]["rev"])

    # -- clusters -----------------------------------------------------------

    def create_cluster(self, body: ClusterIn) -> dict[str, Any]:
        """Create a cluster; 409 if the name is taken."""
        with self._tx() as db:
            if db.execute("SELECT 1 FROM clusters WHERE name=?", (body.name,)).fetchone():
                raise Conflict(f"cluster {body.name!r} exists; pick another name")
            db.execute(
                "INSERT INTO clusters VALUES (?, ?, ?, ?, ?)",
                (body.name, body.mode, body.expected_nodes, body.environment, self.clock()),
            )
            self._event(db, "cluster.created", body.name, **body.model_dump())
        return self.get_cluster(body.name)

    def list_clusters(self) -> list[dict[str, Any]]:
        """Every cluster with its status."""
        names = [row["name"] for row in self._read("SELECT name FROM clusters ORDER BY name")]
        return [self.get_cluster(name) for name in names]

    def get_cluster(self, name: str) -> dict[str, Any]:
        """A cluster and its readiness: which nodes are missing and why."""
        with self._lock:
            rows = self._read("SELECT * FROM clusters WHERE name=?", (name,))
            if not rows:
                raise NotFound(
                    f"cluster {name!r} does not exist; create it with POST /api/v1/clusters"
                )
            machines = self._read(
                "SELECT * FROM machines WHERE cluster=? ORDER BY hostname", (name,)
            )
        cluster = dict(rows[0])
        ready = sum(1 for m in machines if m["state"] == "Ready")
        missing: list[dict[str, Any]] = []
        for m in machines:
            if m["state"] != "Ready":
                missing.append(
                    {"hostname": m["hostname"], "mac": m["mac"], "state": m["state"],
                     "reasons": _why_not_ready(m)}
                )
        undefined = cluster["expected_nodes"] - len(machines)
        if undefined > 0:
            missing.append(
                {"hostname": None, "mac": None, "state": "Undefined",
                 "reasons": [f"{undefined} of {cluster['expected_nodes']} expected machines "
                             "not defined; add them with POST /api/v1/machines"]}
            )
        expected = cluster["expected_nodes"]
        cluster["status"] = {
            "phase": "Ready" if ready >= expected else "NotReady",
            "ready": ready, "expected": expected, "missing": missing,
        }
        return cluster

    # -- profiles and artifacts --------------------------------------------

    def create_profile(self, body: ProfileIn) -> dict[str, Any]:
        """Create or replace a boot profile (artifacts may be uploaded later)."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO profiles VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "kernel=excluded.kernel, initrd=excluded.initrd, cmdline=excluded.cmdline",
                (body.name, body.kernel, body.initrd, body.cmdline),
            )
            self._event(db, "profile.saved", body.name, **body.model_dump())
        return body.model_dump()

    def list_profiles(self) -> list[dict[str, Any]]:
        """Every boot profile."""
        return [dict(r) for r in self._read("SELECT * FROM profiles ORDER BY name")]

    def put_artifact(self, name: str, data: bytes) -> dict[str, Any]:
        """Store artifact bytes held in memory (seed files, small uploads)."""
        tmp = self.upload_path(name)
        try:
            tmp.write_bytes(data)
            return self.commit_artifact(name, tmp, len(data), hashlib.sha256(data).hexdigest())
        finally:
            tmp.unlink(missing_ok=True)

    def upload_path(self, name: str) -> Path:
        """A private temporary file beside the artifacts to stream an upload into."""
        return self.artifact_dir / f".{name}.{os.getpid()}.{secrets.token_hex(6)}.upload"

    def commit_artifact(self, name: str, tmp: Path, size: int, sha256: str) -> dict[str, Any]:
        """Move a fully written upload into place (atomic) and record it."""
        os.replace(tmp, self.artifact_dir / name)
        with self._tx() as db:
            db.execute(
                "INSERT INTO artifacts VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "size=excluded.size, sha256=excluded.sha256, uploaded_at=excluded.uploaded_at",
                (name, size, sha256, self.clock()),
            )
            self._event(db, "artifact.uploaded", name, size=size, sha256=sha256)
        return {"name": name, "size": size, "sha256": sha256}

    def artifact(self, name: str) -> tuple[dict[str, Any], Path]:
        """Metadata and file path of an artifact; NotFound if never uploaded."""
        rows = self._read("SELECT name, size, sha256 FROM artifacts WHERE name=?", (name,))
        if not rows:
            raise NotFound(f"artifact {name!r} not uploaded; POST it to /api/v1/artifacts/{name}")
        return dict(rows[0]), self.artifact_dir / name

    def list_artifacts(self) -> list[dict[str, Any]]:
        """Metadata of every artifact."""
        rows = self._read("SELECT name, size, sha256 FROM artifacts ORDER BY name")
        return [dict(r) for r in rows]

    # -- machines -----------------------------------------------------------

    def create_machine(self, body: MachineIn) -> dict[str, Any]:
        """Add a machine as Pending; hostname and MAC are unique per site."""
        with self._tx() as db:
            if not db.execute("SELECT 1 FROM clusters WHERE name=?", (body.cluster,)).fetchone():
                raise InvalidReference("cluster", f"cluster {body.cluster!r} does not exist")
            if not db.execute("SELECT 1 FROM profiles WHERE name=?", (body.profile,)).fetchone():
                raise InvalidReference("profile", f"profile {body.profile!r} does not exist")
            if db.execute("SELECT 1 FROM machines WHERE mac=?", (body.mac,)).fetchone():
                raise Conflict(f"machine {body.mac} exists; each MAC is defined once")
            taken = db.execute(
                "SELECT mac FROM machines WHERE hostname=?", (body.hostname,)
            ).fetchone()
            if taken:
                raise Conflict(
                    f"hostname {body.hostname!r} is already used by {taken['mac']}; "
                    "hostnames are unique per site"
                )
            db.execute(
                "INSERT INTO machines VALUES (?, ?, ?, ?, ?, 'Pending', '[]', NULL, ?)",
                (body.mac, body.cluster, body.role, body.hostname, body.profile, self.clock()),
            )
            self._event(db, "machine.created", body.mac, **body.model_dump())
        return self.get_machine(body.mac)

    def get_machine(self, mac: str) -> dict[str, Any]:
        """A machine's record (no tokens)."""
        rows = self._read("SELECT * FROM machines WHERE mac=?", (mac,))
        if not rows:
            raise NotFound(f"machine {mac} is not defined; add it with POST /api/v1/machines")
        return _machine_dict(rows[0])

    def list_machines(self, cluster: str | None = None) -> list[dict[str, Any]]:
        """Every machine, optionally of one cluster."""
        if cluster:
            rows = self._read("SELECT * FROM machines WHERE cluster=? ORDER BY mac", (cluster,))
        else:
            rows = self._read("SELECT * FROM machines ORDER BY mac")
        return [_machine_dict(r) for r in rows]

    # -- proxies and assignments -------------------------------------------

    def create_proxy(self, body: ProxyIn, token: str | None = None) -> dict[str, str]:
        """Register a proxy; returns its token (shown once). Re-registering rotates it.

        `token` lets a seed file fix the token in advance; the API never passes it.
        """
        token = token or new_token("proxy")
        with self._tx() as db:
            for cluster in body.clusters:
                if not db.execute("SELECT 1 FROM clusters WHERE name=?", (cluster,)).fetchone():
                    raise InvalidReference("clusters", f"cluster {cluster!r} does not exist")
            db.execute(
                "INSERT INTO proxies VALUES (?, ?, ?, ?, NULL, NULL) ON CONFLICT(name) DO UPDATE "
                "SET token_hash=excluded.token_hash, segments=excluded.segments, "
                "clusters=excluded.clusters",
                (body.name, token_hash(token), json.dumps(body.segments),
                 json.dumps(body.clusters)),
            )
            self._event(db, "proxy.registered", body.name, segments=body.segments,
                        clusters=body.clusters)
        return {"name": body.name, "token": token}

    def list_proxies(self) -> list[dict[str, Any]]:
        """Every proxy with its last heartbeat (tokens are never returned)."""
        return [_proxy_dict(r) for r in self._read("SELECT * FROM proxies ORDER BY name")]

    def heartbeat(self, name: str, body: Heartbeat) -> None:
        """Record a proxy's heartbeat: version and the segments it now serves."""
        with self._tx() as db:
            db.execute(
                "UPDATE proxies SET version=?, segments=?, last_heartbeat=? WHERE name=?",
                (body.version, json.dumps(body.segments), self.clock(), name),
            )
            self._event(db, "proxy.heartbeat", name, version=body.version,
                        segments=body.segments)

    def proxy_clusters(self, name: str) -> list[str]:
        """The clusters a proxy serves."""
        rows = self._read("SELECT clusters FROM proxies WHERE name=?", (name,))
        if not rows:
            raise NotFound(f"proxy {name!r} is not registered")
        return list(json.loads(rows[0]["clusters"]))

    def assignments(self, name: str) -> tuple[int, list[dict[str, str]], str]:
        """(revision, the MACs the proxy serves with their profile, their digest), consistent.

        The digest (SHA-256 of the canonical JSON) is equal for equal assignments, also
        across restarts: the long-poll's ETag. Items and digest are kept until a write
        touches a machine's assignment or a proxy's clusters (the schema's triggers count
        those): every boot, register and ready wakes the proxy's long-poll, and reading
        and hashing every row on each wake grew with the square of the fleet. The items
        are shared between callers: read them, do not change them.
        """
        with self._lock:
            generation = int(
                self._read("SELECT n FROM assignment_generation")[0]["n"]
            )
            kept = self._assigned.get(name)
            if kept is None or kept[0] != generation:
                clusters = self.proxy_clusters(name)
                marks = ",".join("?" * len(clusters))
                rows = self._read(
                    f"SELECT mac, cluster, hostname, role, profile FROM machines "
                    f"WHERE cluster IN ({marks}) ORDER BY mac", tuple(clusters),
                ) if clusters else []
                items = [dict(r) for r in rows]
                digest = hashlib.sha256(json.dumps(items, sort_keys=True).encode()).hexdigest()
                kept = self._assigned[name] = (generation, items, digest)
            return self.revision(), kept[1], kept[2]

    # -- boot, registration, readiness -------------------------------------

    def boot(self, mac: str, proxy: str, cp_url: str) -> dict[str, Any]:
        """Boot data for a MAC the proxy serves; mints a join token, machine → Booting."""
        token = new_token(JOIN)
        with self._tx() as db:
            row = db.execute("SELECT * FROM machines WHERE mac=?", (mac,)).fetchone()
            if row is None:
                raise NotFound(f"machine {mac} is not defined; the proxy must not boot it")
            served = json.loads(
                db.execute("SELECT clusters FROM proxies WHERE name=?", (proxy,)).fetchone()[
                    "clusters"
                ]
            )
            if row["cluster"] not in served:
                raise Forbidden(
                    f"proxy {proxy!r} does not serve cluster {row['cluster']!r} of {mac}; "
                    "only the proxies assigned to that cluster may fetch its boot data"
                )
            profile = db.execute(
                "SELECT * FROM profiles WHERE name=?", (row["profile"],)
            ).fetchone()
            db.execute(
                "UPDATE tokens SET state='revoked' WHERE mac=? AND kind=? AND state='active'",
                (mac, JOIN),
            )
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, 'active', ?)",
                (token_hash(token), JOIN, mac, self.clock()),
            )
            db.execute(
                "UPDATE machines SET state='Booting', reasons='[]', updated_at=? WHERE mac=?",
                (self.clock(), mac),
            )
            self._event(db, "machine.booting", mac, proxy=proxy, state="Booting")
            shas = {
                r["name"]: r["sha256"]
                for r in db.execute(
                    "SELECT name, sha256 FROM artifacts WHERE name IN (?, ?)",
                    (profile["kernel"], profile["initrd"]),
                )
            }
        values = {
            "hostname": row["hostname"], "mac": mac, "cluster": row["cluster"],
            "join_token": token, "cp_url": cp_url,
        }
        return {
            "mac": mac, "hostname": row["hostname"], "cluster": row["cluster"],
            "kernel": profile["kernel"], "initrd": profile["initrd"],
            "cmdline": render_cmdline(profile["cmdline"], values),
            "join_token": token,
            "kernel_url": f"{cp_url}/api/v1/artifacts/{profile['kernel']}",
            "initrd_url": f"{cp_url}/api/v1/artifacts/{profile['initrd']}",
            "kernel_sha256": shas.get(profile["kernel"]),
            "initrd_sha256": shas.get(profile["initrd"]),
        }

    def principal(self, token: str) -> Principal | None:
        """Who holds a proxy, join or node token; None if never issued."""
        digest = token_hash(token)
        rows = self._read("SELECT name FROM proxies WHERE token_hash=?", (digest,))
        if rows:
            return Principal("proxy", rows[0]["name"])
        rows = self._read("SELECT kind, mac, state FROM tokens WHERE hash=?", (digest,))
        if rows:
            return Principal(rows[0]["kind"], rows[0]["mac"], rows[0]["state"])
        return None

    def register(self, token: str, body: RegisterIn) -> dict[str, Any]:
        """Spend a join token and check the facts: Registered with a node token, or Rejected."""
        now = self.clock()
        digest = token_hash(token)
        node_token = new_token(NODE)
        with self._tx() as db:
            row = db.execute(
                "SELECT kind, mac, state FROM tokens WHERE hash=?", (digest,)
            ).fetchone()
            _check_join_token(row, body.mac)
            db.execute("UPDATE tokens SET state='used' WHERE hash=?", (digest,))
            reasons = check_requirements(body.facts, now)
            facts = body.facts.model_dump(mode="json")
            if reasons:
                db.execute(
                    "UPDATE machines SET state='Rejected', reasons=?, facts=?, updated_at=? "
                    "WHERE mac=?", (json.dumps(reasons), json.dumps(facts), now, body.mac),
                )
                self._event(db, "node.rejected", body.mac, state="Rejected", reasons=reasons)
                return {"state": "Rejected", "node_token": None, "reasons": reasons}
            db.execute(
                "UPDATE tokens SET state='revoked' WHERE mac=? AND kind=? AND state='active'",
                (body.mac, NODE),
            )
            db.execute(
                "INSERT INTO tokens VALUES (?, ?, ?, 'active', ?)",
                (token_hash(node_token), NODE, body.mac, now),
            )
            db.execute(
                "UPDATE machines SET state='Registered', reasons='[]', facts=?, updated_at=? "
                "WHERE mac=?", (json.dumps(facts), now, body.mac),
            )
            self._event(db, "node.registered", body.mac, state="Registered",
                        arch=body.facts.arch, cpu_cores=body.facts.cpu_cores,
                        memory_bytes=body.facts.memory_bytes)
        return {"state": "Registered", "node_token": node_token, "reasons": []}

    def boot_arch(self, mac: str, proxy: str, pxe_arch: int, segment: str) -> dict[str, Any]:
        """A proxy saw ``mac`` boot as ``pxe_arch``: a machine that is not x86-64 is Rejected.

        Only a proxy serving the machine's cluster may say so. A Ready machine is left alone
        (its agent proved its architecture), and so is a Rejected one: its first reason
        stands (AAVMF's HTTP boot, arch 19, follows its failed PXE boot, arch 11)."""
        reasons = boot_arch_reasons(pxe_arch)
        now = self.clock()
        with self._tx() as db:
            row = db.execute("SELECT * FROM machines WHERE mac=?", (mac,)).fetchone()
            if row is None:
                raise NotFound(f"machine {mac} is not defined")
            served = db.execute("SELECT clusters FROM proxies WHERE name=?", (proxy,)).fetchone()
            if served is None or row["cluster"] not in json.loads(served["clusters"]):
                raise Forbidden(f"proxy {proxy!r} does not serve cluster {row['cluster']!r} "
                                f"of {mac}")
            if reasons and row["state"] not in ("Ready", "Rejected"):
                db.execute("UPDATE machines SET state='Rejected', reasons=?, updated_at=? "
                           "WHERE mac=?", (json.dumps(reasons), now, mac))
                self._event(db, "node.rejected", mac, state="Rejected", reasons=reasons,
                            proxy=proxy, pxe_arch=pxe_arch, segment=segment)
        return self.get_machine(mac)

    def ready(self, mac: str) -> dict[str, Any]:
        """Registered → Ready (idempotent once Ready); 409 from any other state."""
        with self._tx() as db:
            row = db.execute("SELECT state, cluster FROM machines WHERE mac=?", (mac,)).fetchone()
            if row is None:
                raise NotFound(f"machine {mac} is not defined")
            if row["state"] not in ("Registered", "Ready"):
                raise Conflict(
                    f"machine {mac} is {row['state']}; only a Registered node can report Ready"
                )
            if row["state"] == "Registered":
                db.execute(
                    "UPDATE machines SET state='Ready', updated_at=? WHERE mac=?",
                    (self.clock(), mac),
                )
                self._event(db, "node.ready", mac, state="Ready", cluster=row["cluster"])
                cluster = row["cluster"]
                counts = db.execute(
                    "SELECT c.expected_nodes AS expected, "
                    "(SELECT COUNT(*) FROM machines m WHERE m.cluster=c.name AND m.state='Ready') "
                    "AS ready FROM clusters c WHERE c.name=?", (cluster,),
                ).fetchone()
                if counts["ready"] == counts["expected"]:
                    self._event(db, "cluster.ready", cluster, ready=counts["ready"])
        return self.get_machine(mac)

    # -- conflicts and events ----------------------------------------------

    def add_conflict(self, proxy: str, body: ConflictIn) -> dict[str, Any]:
        """Store a conflict report from a proxy."""
        now = self.clock()
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO conflicts (proxy, mac, other_server, segment, seen_at, received_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (proxy, body.mac, body.other_server, body.segment, body.seen_at, now),
            )
            self._event(db, "conflict.reported", body.mac, proxy=proxy,
                        other_server=body.other_server, segment=body.segment)
        return {"id": cur.lastrowid, "proxy": proxy, "received_at": now, **body.model_dump()}

    def conflicts(self) -> list[dict[str, Any]]:
        """Every conflict report, oldest first."""
        return [dict(r) for r in self._read("SELECT * FROM conflicts ORDER BY id")]

    def events(self, since: int = 0, limit: int = 10000) -> list[dict[str, Any]]:
        """Events with seq > since, oldest first."""
        rows = self._read(
            "SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (since, limit)
        )
        return [
            {"seq": r["seq"], "time": r["time"], "kind": r["kind"], "subject": r["subject"],
             "data": json.loads(r["data"])}
            for r in rows
        ]


def render_cmdline(template: str, values: dict[str, str]) -> str:
    """Fill `{hostname}`, `{mac}`, `{cluster}`, `{join_token}`, `{cp_url}`; leave others as-is.

    Unknown `{...}` are kept verbatim rather than failing the boot, because
    kernel command lines can legitimately contain braces.
    """
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out


def _check_join_token(row: sqlite3.Row | None, mac: str) -> None:
    if row is None or row["kind"] != JOIN:
        raise Forbidden("this is not a join token; use the join_token from the boot data")
    if row["mac"] != mac:
        raise Forbidden(f"this join token was issued for another machine, not {mac}")
    if row["state"] == "used":
        raise Forbidden("join token already used; boot the machine again to get a new one")
    if row["state"] == "revoked":
        raise Forbidden("join token superseded by a newer boot; use the latest join_token")


def _why_not_ready(m: sqlite3.Row) -> list[str]:
    state = m["state"]
    if state == "Rejected":
        return list(json.loads(m["reasons"]))
    return {
        "Pending": ["not booted: no proxy has fetched its boot script yet"],
        "Booting": ["boot script served; the node agent has not registered yet"],
        "Registered": ["registered; waiting for the node to report ready"],
    }.get(state, [f"state {state}"])


def _machine_dict(row: sqlite3.Row) -> dict[str, Any]:
    out = dict(row)
    out["reasons"] = json.loads(out["reasons"])
    out["facts"] = json.loads(out["facts"]) if out["facts"] else None
    return out


def _proxy_dict(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "name": row["name"], "segments": json.loads(row["segments"]),
        "clusters": json.loads(row["clusters"]), "version": row["version"],
        "last_heartbeat": row["last_heartbeat"],
    }
