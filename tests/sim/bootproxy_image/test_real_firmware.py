"""Real firmware against flexlab's TFTP and HTTP servers (QEMU under TCG, ~6 s BIOS, ~18 s UEFI).

SeaBIOS runs the NIC's iPXE ROM; OVMF (with an empty NIC ROM) runs EDK2's own
PXE stack, whose TFTP client probes the size (tsize, then ERROR 8) and asks
for windowsize 4.  The site DHCP is dnsmasq (no TFTP of its own) pointing at
our servers; the served iPXE script fetches a ~1 MB file over TFTP and HTTP and
prints markers on the serial console.  Marked ``vm``: it boots virtual machines.
The lead may move it to tests/vm/.
"""

import json
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MAC = "52:54:00:fe:00:01"
IPXE_ROM = Path("/usr/lib/ipxe/undionly.kpxe")
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")
REPO = Path(__file__).resolve().parents[3]

pytestmark = [
    pytest.mark.vm,
    pytest.mark.timeout(240),
    pytest.mark.needs_root,  # a network namespace and a tap
    pytest.mark.needs_binary("qemu-system-x86_64", "dnsmasq", "ip", "nsenter",
                             how="scripts/setup-host.sh (make setup)"),
    pytest.mark.needs(IPXE_ROM.exists() and OVMF_CODE.exists(),
                      reason="needs the Debian packages ipxe and ovmf: apt-get install ipxe "
                      "ovmf (scripts/setup-host.sh)"),
]


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _wait_for(path: Path, text: str, proc: subprocess.Popen[bytes], timeout: float) -> None:
    """Poll a log file for ``text``; raise with the log tail if it never comes."""
    deadline = time.monotonic() + timeout
    while text not in (path.read_text(errors="replace") if path.exists() else ""):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = path.read_text(errors="replace")[-2000:] if path.exists() else ""
            raise AssertionError(f"{text!r} never appeared in {path}:\n{tail}")
        time.sleep(0.05)


@pytest.fixture
def namespace() -> Iterator[str]:
    name = "fltest" + secrets.token_hex(3)
    _ip("netns", "add", name)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=10)


@pytest.mark.parametrize("firmware", ["bios", "uefi"])
def test_firmware_fetches_by_tftp_and_http(firmware: str, namespace: str,
                                           tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir(parents=True)
    for name in ("undionly.kpxe", "ipxe.efi"):
        shutil.copy(Path("/usr/lib/ipxe") / name, root / name)  # follows the /boot symlink
    (root / "test.ipxe").write_text(
        "#!ipxe\necho FLEXLAB-TFTP-SCRIPT-OK\n"
        "imgfetch tftp://10.99.0.1/ipxe.efi && echo FLEXLAB-TFTP-BIG-OK\n"
        "chain http://10.99.0.1:8080/test2.ipxe\n")
    (root / "test2.ipxe").write_text(
        "#!ipxe\nimgfetch http://10.99.0.1:8080/ipxe.efi && echo FLEXLAB-HTTP-BIG-OK\n"
        # Padding: the last bytes on the serial line are lost when QEMU exits on reboot.
        "echo FLEXLAB-HTTP-SCRIPT-OK\n" + "echo ................................\n" * 3
        + "reboot\n")
    for p in (tmp_path, root, *root.iterdir()):
        p.chmod(0o755 if p.is_dir() else 0o644)
    ns = namespace
    _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
    _ip("-n", ns, "addr", "add", "10.99.0.1/24", "dev", "tap0")
    # An RA on the segment, or this iPXE build waits ~16 s for IPv6 (MACHINE-NOTES).
    _ip("-n", ns, "addr", "add", "fd00:99::1/64", "dev", "tap0", "nodad")
    _ip("-n", ns, "link", "set", "tap0", "up")
    enter = ["nsenter", f"--net=/run/netns/{ns}", "--"]
    boot = "undionly.kpxe" if firmware == "bios" else "ipxe.efi"
    procs: list[subprocess.Popen[bytes]] = []

    def start(argv: list[str], name: str) -> tuple[subprocess.Popen[bytes], Path]:
        out = tmp_path / f"{name}.log"
        with out.open("wb") as f:
            proc = subprocess.Popen([*enter, *argv], stdout=f, stderr=subprocess.STDOUT,
                                    cwd=REPO)
        procs.append(proc)
        return proc, out

    try:
        tftp, tftp_log = start([sys.executable, "-m", "bootproxy.tftp", "--root", str(root),
                                "--port", "69", "--log-level", "INFO"], "tftp")
        http, http_log = start([sys.executable, "-m", "bootproxy.httpboot", "--root", str(root),
                                "--port", "8080", "--cache-dir", str(tmp_path / "cache")],
                               "http")
        dns, dns_log = start([
            "dnsmasq", "--no-daemon", "--port=0", "--interface=tap0", "--bind-interfaces",
            "--no-ping", "--dhcp-range=10.99.0.50,10.99.0.60,1h", "--enable-ra",
            "--dhcp-range=fd00:99::,ra-only", "--dhcp-match=set:ipxe,175",
            f"--dhcp-boot=tag:!ipxe,{boot},,10.99.0.1", "--dhcp-boot=tag:ipxe,test.ipxe,,10.99.0.1",
            "--log-dhcp", "--conf-file=/dev/null"], "dnsmasq")
        _wait_for(tftp_log, '"event": "ready"', tftp, 20)
        _wait_for(http_log, '"event": "ready"', http, 20)
        _wait_for(dns_log, "DHCP, IP range", dns, 20)
        if firmware == "bios":
            machine = ["-machine", "pc,graphics=off", "-device", f"e1000,netdev=n0,mac={MAC}"]
        else:
            vars_fd = tmp_path / "vars.fd"
            shutil.copy(OVMF_VARS, vars_fd)
            machine = ["-machine", "q35",
                       "-drive", f"if=pflash,format=raw,readonly=on,file={OVMF_CODE}",
                       "-drive", f"if=pflash,format=raw,file={vars_fd}",
                       "-device", f"virtio-net-pci,netdev=n0,mac={MAC},romfile="]
        serial = tmp_path / "serial.log"
        qemu = subprocess.run([
            *enter, "qemu-system-x86_64", "-accel", "tcg", *machine, "-m", "512",
            "-no-reboot", "-display", "none", "-serial", f"file:{serial}",
            "-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no", "-boot", "n"],
            capture_output=True, timeout=180)
        console = serial.read_text(errors="replace")
        for marker in ("FLEXLAB-TFTP-SCRIPT-OK", "FLEXLAB-TFTP-BIG-OK", "FLEXLAB-HTTP-BIG-OK",
                       "FLEXLAB-HTTP-SCRIPT-OK"):
            assert marker in console, (qemu.stderr.decode()[-500:], console[-2000:])
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    stopped = [json.loads(line) for line in tftp_log.read_text().splitlines()
               if line.startswith("{") and '"stopped"' in line]
    assert stopped and stopped[0]["transfers_failed"] == 0, stopped
    rrqs = [line for line in tftp_log.read_text().splitlines() if "tftp rrq" in line]
    if firmware == "uefi":
        # EDK2: tsize probe ended by ERROR 8, then the real transfer with windowsize.
        assert stopped[0]["option_probes"] == 1, stopped
        assert any("'windowsize'" in line for line in rrqs), rrqs
