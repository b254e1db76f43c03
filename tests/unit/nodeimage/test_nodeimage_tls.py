"""The node image's verifying HTTPS client and the CA that comes with the boot.

The last test runs the client exactly as built into the newest image: its
busybox runs its https.sh, which runs its openssl through its own loader and
libraries, against real TLS servers holding the Control Plane's fault
certificates (controlplane.tls): the lab CA's certificate is accepted, the
others are refused with their reason and receive nothing.
"""

from __future__ import annotations

import gzip
import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from bootproxy.cainitrd import CA_PATH, ca_initrd
from bootproxy.errors import ConfigError
from controlplane.tls import TlsFiles, fault_server_cert, make_lab_ca
from harness.pytest_plugin import missing_requirement, require
from nodeimage.build import latest_built
from nodeimage.errors import PackageError
from nodeimage.initramfs import FILES_DIR
from nodeimage.tlsclient import LIBRARY_DIRS, check_closure, elf_dependencies
from nodeimage.trust import initrd_with_ca

pytestmark = [pytest.mark.unit, pytest.mark.timeout(120)]

BUSYBOX = shutil.which("busybox")
needs_busybox = pytest.mark.needs_binary("busybox", how="apt-get install busybox-static")
CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"


@needs_busybox
def test_ca_initrd_is_a_cpio_holding_the_ca_where_the_agent_reads_it(tmp_path: Path) -> None:
    assert BUSYBOX is not None
    archive = ca_initrd(CA_PEM)
    listing = subprocess.run([BUSYBOX, "cpio", "-t"], input=archive, capture_output=True,
                             check=True).stdout.decode().split()
    assert listing == ["flexlab", CA_PATH]
    subprocess.run([BUSYBOX, "cpio", "-i", "-d"], input=archive, cwd=tmp_path, check=True,
                   capture_output=True)
    assert (tmp_path / CA_PATH).read_bytes() == CA_PEM
    assert ca_initrd(CA_PEM) == archive, "the archive must be reproducible"
    agent = (FILES_DIR / "agent.sh").read_text()
    assert f"CA_FILE=/{CA_PATH}\n" in agent
    assert f"FLEXLAB_CA:-/{CA_PATH}" in (FILES_DIR / "https.sh").read_text()


def test_ca_initrd_refuses_what_is_not_a_certificate() -> None:
    with pytest.raises(ConfigError, match="not a PEM certificate"):
        ca_initrd(b"hello\n")


def test_closure_check_names_the_missing_library(tmp_path: Path) -> None:
    openssl = Path("/usr/bin/openssl")
    require(openssl.is_file(), "the host has no /usr/bin/openssl: apt-get install openssl")
    interp, needed = elf_dependencies(openssl)
    assert interp == "/lib64/ld-linux-x86-64.so.2"
    assert {"libssl.so.3", "libcrypto.so.3", "libc.so.6"} <= set(needed)
    (tmp_path / "usr/bin").mkdir(parents=True)
    shutil.copyfile(openssl, tmp_path / "usr/bin/openssl")
    with pytest.raises(PackageError, match=r"loader /lib64/ld-linux-x86-64\.so\.2"):
        check_closure(tmp_path, "usr/bin/openssl")
    (tmp_path / "lib64").mkdir()
    shutil.copyfile("/lib64/ld-linux-x86-64.so.2", tmp_path / "lib64/ld-linux-x86-64.so.2")
    with pytest.raises(PackageError, match=r"needs libssl\.so\.3"):
        check_closure(tmp_path, "usr/bin/openssl")


# -- the built image's client against real TLS servers -------------------------------


class _Server:
    """An HTTPS server with one certificate that records every request it gets."""

    def __init__(self, files: TlsFiles) -> None:
        self.requests: list[tuple[str, str, str]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length).decode()
                # The raw target: http.server folds a leading "//" in self.path.
                target = self.requestline.split()[1]
                server.requests.append((self.command, target, body))
                out = json.dumps({"unix": 1.5, "path": target, "auth":
                                  self.headers.get("Authorization", "")}).encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = _answer

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(files.server_cert), str(files.server_key))
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        # Handshake in the handler thread: a stuck client must not block shutdown().
        self.http.socket = context.wrap_socket(self.http.socket, server_side=True,
                                               do_handshake_on_connect=False)
        self.http.handle_error = lambda request, address: None  # refused handshakes
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.http.server_address[1]}{path}"

    def close(self) -> None:
        self.http.shutdown()
        self.http.server_close()
        self.thread.join(5)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str,
                                                                                   _Server]]]:
    pki = tmp_path_factory.mktemp("pki")
    names, ips = ["localhost"], ["127.0.0.1"]
    files = {"good": make_lab_ca(pki, names, ips)}
    for fault in ("wrong-ca", "wrong-name", "expired"):
        files[fault] = fault_server_cert(pki, fault, names, ips)
    running = {case: _Server(f) for case, f in files.items()}
    try:
        yield files["good"].ca_cert, running
    finally:
        for server in running.values():
            server.close()


@pytest.fixture(scope="module")
def image_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The newest built image's initramfs, unpacked."""
    if BUSYBOX is None:
        missing_requirement("needs busybox on PATH: apt-get install busybox-static")
    built = latest_built()
    if built is None or "tls_client" not in built.manifest:
        missing_requirement("no node image with the TLS client built yet: make nodeimage")
    root = tmp_path_factory.mktemp("initramfs")
    subprocess.run([BUSYBOX, "cpio", "-i", "-d"], input=gzip.decompress(
        built.initrd.read_bytes()), cwd=root, check=True, capture_output=True)
    return root


def _client(root: Path, tmp: Path) -> dict[str, str]:
    """Environment that makes https.sh use only the image's busybox applets and openssl."""
    bindir = tmp / "bin"
    bindir.mkdir(exist_ok=True)
    subprocess.run([str(root / "bin/busybox"), "--install", "-s", str(bindir)], check=True)
    libs = ":".join(str(root / d) for d in LIBRARY_DIRS)
    wrapper = tmp / "openssl"
    wrapper.write_text(f"#!{root}/bin/busybox sh\nexec {root}/lib64/ld-linux-x86-64.so.2 "
                       f"--inhibit-cache --library-path {libs} {root}/usr/bin/openssl \"$@\"\n")
    wrapper.chmod(0o755)
    return {"PATH": str(bindir), "OPENSSL": str(wrapper), "TMPDIR": str(tmp)}


def _https(root: Path, env: dict[str, str], ca: Path | None, url: str,
           *args: str) -> subprocess.CompletedProcess[str]:
    full = {**env, "FLEXLAB_CA": str(ca) if ca else str(root / "no-such-ca.pem")}
    return subprocess.run([str(root / "bin/busybox"), "sh", str(root / "flexlab/https.sh"),
                           *args, url], env=full, capture_output=True, text=True, timeout=30,
                          check=False)


def test_image_openssl_runs_on_its_own_libraries(image_root: Path, tmp_path: Path) -> None:
    libs = ":".join(str(image_root / d) for d in LIBRARY_DIRS)
    listed = subprocess.run([str(image_root / "lib64/ld-linux-x86-64.so.2"), "--inhibit-cache",
                             "--library-path", libs, "--list",
                             str(image_root / "usr/bin/openssl")],
                            capture_output=True, text=True, check=True).stdout
    resolved = [line.split("=>")[1].split("(")[0].strip() for line in listed.splitlines()
                if "=>" in line]
    assert resolved and all(path.startswith(str(image_root)) for path in resolved), listed
    assert set(check_closure(image_root, "usr/bin/openssl")) >= {
        "usr/lib/x86_64-linux-gnu/libssl.so.3", "lib/x86_64-linux-gnu/libc.so.6"}


@pytest.mark.parametrize(("case", "reason"), [
    ("wrong-ca", "unknown-ca"), ("wrong-name", "hostname-mismatch"), ("expired", "expired"),
])
def test_image_client_refuses_a_bad_certificate_and_sends_nothing(
    image_root: Path, servers: tuple[Path, dict[str, _Server]], tmp_path: Path,
    case: str, reason: str,
) -> None:
    ca, running = servers
    env = _client(image_root, tmp_path)
    done = _https(image_root, env, ca, running[case].url("/api/v1/nodes/register"),
                  "--header", "Authorization: Bearer join-secret", "--post-data", '{"a":1}')
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 3 and lines[-1] == f"tls-{reason}", done.stderr
    assert lines[-2].startswith(f"tls refused reason={reason} "), done.stderr
    assert done.stdout == "" and running[case].requests == [], "the token must never leave"
    assert not list(tmp_path.glob("https.*")), "temp files must be removed"


def test_image_client_accepts_the_lab_ca_and_refuses_without_one(
    image_root: Path, servers: tuple[Path, dict[str, _Server]], tmp_path: Path,
) -> None:
    ca, running = servers
    env = _client(image_root, tmp_path)
    good = running["good"]
    done = _https(image_root, env, ca, good.url("/api/v1/nodes/register"),
                  "--header", "Authorization: Bearer join-secret",
                  "--header", "Content-Type: application/json", "--post-data", '{"a":1}')
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["path"] == "/api/v1/nodes/register"
    assert answer["auth"] == "Bearer join-secret"
    assert good.requests[-1] == ("POST", "/api/v1/nodes/register", '{"a":1}')
    before = len(good.requests)
    done = _https(image_root, env, None, good.url("/api/v1/time"))
    assert done.returncode == 3 and done.stderr.strip().endswith("tls-no-ca"), done.stderr
    assert len(good.requests) == before


def test_ca_initrd_starts_4_byte_aligned_after_any_image(tmp_path: Path) -> None:
    """Linux ignores an archive at an unaligned offset: the CA would silently be missing."""
    ca = tmp_path / "ca.pem"
    ca.write_bytes(CA_PEM)
    for size in range(4, 8):
        image = tmp_path / f"initrd-{size}.img"
        image.write_bytes(b"\x1f\x8b" + b"x" * (size - 2))
        joined = initrd_with_ca(image, ca, tmp_path / "joined.img").read_bytes()
        offset = joined.index(b"070701")
        assert offset % 4 == 0 and joined[size:offset] == b"\0" * (offset - size)
        assert joined[offset:] == ca_initrd(CA_PEM) and len(ca_initrd(CA_PEM)) % 4 == 0


def test_image_client_stamps_the_clock_after_the_handshake(
    image_root: Path, servers: tuple[Path, dict[str, _Server]], tmp_path: Path,
) -> None:
    """@FLEXLAB_NOW@ in a body becomes the client's clock when the request is written,
    after the certificate was verified: the server reads a time no older than the
    handshake, and a refused certificate still gets nothing at all."""
    import time

    ca, running = servers
    env = _client(image_root, tmp_path)
    server = running["good"]
    before = len(server.requests)
    started = time.time()
    done = _https(image_root, env, ca, server.url("/api/v1/nodes/register"),
                  "--post-data", '{"clock_unix":@FLEXLAB_NOW@}')
    finished = time.time()
    assert done.returncode == 0, done.stderr
    method, _target, body = server.requests[before]
    assert method == "POST"
    stamped = json.loads(body)["clock_unix"]
    assert started < stamped < finished, (started, stamped, finished)
    bad = running["wrong-ca"]
    before_bad = len(bad.requests)
    refused = _https(image_root, env, ca, bad.url("/api/v1/nodes/register"),
                     "--post-data", '{"clock_unix":@FLEXLAB_NOW@}')
    assert refused.returncode == 3 and "tls-unknown-ca" in refused.stderr
    assert len(bad.requests) == before_bad


def test_image_client_stamps_a_clock_window_without_the_handshake(
    image_root: Path, servers: tuple[Path, dict[str, _Server]], tmp_path: Path,
) -> None:
    """With FLEXLAB_STAMPS, https.sh writes "t0 t1": its clock just before the request
    left (after the handshake) and when the answer was in. The agent's two-way clock
    measurement takes that window, so a slow connection and handshake (here an openssl
    that takes 1 s to start, as a TCG guest does) do not widen its error bound; the
    server's answer still falls inside it. A refused certificate leaves no window."""
    import time

    ca, running = servers
    env = _client(image_root, tmp_path)
    slow = tmp_path / "slow-openssl"
    slow.write_text(f"#!{image_root}/bin/busybox sh\nsleep 1\nexec {env['OPENSSL']} \"$@\"\n")
    slow.chmod(0o755)
    stamps = tmp_path / "stamps"
    env = {**env, "OPENSSL": str(slow), "FLEXLAB_STAMPS": str(stamps)}
    server = running["good"]
    before = len(server.requests)
    started = time.time()
    done = _https(image_root, env, ca, server.url("/api/v1/time"))
    finished = time.time()
    assert done.returncode == 0 and json.loads(done.stdout)["unix"] == 1.5, done.stderr
    assert server.requests[before][:2] == ("GET", "/api/v1/time")
    t0, t1 = (float(x) for x in stamps.read_text().split())
    assert started + 1.0 <= t0 <= t1 <= finished, (started, t0, t1, finished)
    refused = _https(image_root, env, ca, running["wrong-ca"].url("/api/v1/time"))
    assert refused.returncode == 3 and "tls-unknown-ca" in refused.stderr
    assert stamps.read_text() == ""
