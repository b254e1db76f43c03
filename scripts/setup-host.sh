#!/usr/bin/env bash
# Idempotent host set-up for flexlab on Debian 12, run as root by `make setup`.
# Installs the Debian packages the lab needs, creates .venv with the project in
# editable mode, and starts the daemons the tiers need, each waited on by a
# real readiness probe (the daemon's socket answers), never a sleep.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

APT_PACKAGES=(
  dnsmasq-base tcpdump iproute2 nftables procps
  qemu-system-x86 qemu-utils ipxe ipxe-qemu ovmf
  qemu-system-arm qemu-efi-aarch64  # the vm tier's ARM64 UEFI machine (AAVMF)
  libvirt-daemon-system libvirt-dev pkg-config
  docker.io mmdebstrap busybox-static
  kea-admin tftpd-hpa tftp-hpa nginx-light isc-dhcp-relay
  chromium bind9 ipmitool
  wireguard-tools wireguard-go util-linux
  kea-dhcp4-server kea-dhcp-ddns-server chrony
  openssh-client  # ssh-keygen: the bundle tests verify signatures as a third party would
  gcc libc6-dev make flex bison bc libelf-dev lz4 xz-utils  # the node kernel (nodeimage/kernel.py)
)

if [ "$(id -u)" != 0 ]; then
  echo "setup-host.sh: run as root (it installs Debian packages and starts daemons)" >&2
  exit 1
fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  apt-get update -q
  # policy-rc.d keeps package scripts from starting services (tftpd-hpa, nginx)
  # on a host where we want only what the lab starts itself.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
  rm -f /usr/sbin/policy-rc.d; trap - EXIT
else
  log "Debian packages present"
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $($PY --version)"
  "$PY" -m venv .venv
fi
stamp=.venv/.flexlab-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  log "installing flexlab (editable) with test and vm extras"
  .venv/bin/pip install -q --upgrade pip || echo "[setup] pip upgrade failed; continuing with the bundled pip"
  .venv/bin/pip install -q -e '.[test,vm]'
  touch "$stamp"
fi

# Daemons: started only if not already answering; stopped by nobody but the
# operator (they are host services, not lab resources).
wait_socket() { # path timeout_s name
  local path=$1 timeout=$2 name=$3
  .venv/bin/python - "$path" "$timeout" "$name" <<'PY'
import socket, sys, time
path, timeout, name = sys.argv[1], float(sys.argv[2]), sys.argv[3]
deadline = time.monotonic() + timeout
last = None
while time.monotonic() < deadline:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(path)
        sys.exit(0)
    except OSError as e:
        last = e
    finally:
        s.close()
    time.sleep(0.1)  # poll interval of the probe, not a readiness wait
sys.exit(f"{name} did not answer on {path} within {timeout}s: {last}")
PY
}

sock_answers() { .venv/bin/python -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])" "$1" 2>/dev/null; }

mkdir -p /var/log/flexlab
if ! sock_answers /var/run/docker.sock; then
  log "starting dockerd"
  setsid nohup dockerd >/var/log/flexlab/dockerd.log 2>&1 < /dev/null &
  wait_socket /var/run/docker.sock 60 dockerd
  # the engine socket accepts before the API is up: probe the API itself
  for _ in $(seq 1 300); do docker info >/dev/null 2>&1 && break; .venv/bin/python -c 'import time; time.sleep(0.2)'; done
  docker info >/dev/null || { echo "dockerd not answering; see /var/log/flexlab/dockerd.log" >&2; exit 1; }
fi
log "dockerd ready"

# The neighbour (ARP) table limits are host-wide, shared by every namespace: a boot
# storm of a few hundred emulated machines overflowed the default 1,024 entries
# ("neighbor table overflow") and replies that needed ARP were dropped.
for kv in net.ipv4.neigh.default.gc_thresh1=8192 net.ipv4.neigh.default.gc_thresh2=16384 \
          net.ipv4.neigh.default.gc_thresh3=32768 net.core.netdev_max_backlog=10000; do
  sysctl -q -w "$kv" || echo "[setup] could not set $kv (boot storms may drop replies)"
done

# libvirt probes QEMU as root but checks its capability cache as libvirt-qemu: with
# /dev/kvm 0600 root it re-probes on every define (~40 s each here). Group kvm fixes it.
if [ -e /dev/kvm ] && getent group kvm >/dev/null; then
  chgrp kvm /dev/kvm && chmod 0660 /dev/kvm
fi

if ! sock_answers /run/libvirt/virtlogd-sock; then
  log "starting virtlogd"
  setsid nohup virtlogd >/var/log/flexlab/virtlogd.log 2>&1 < /dev/null &
  wait_socket /run/libvirt/virtlogd-sock 30 virtlogd
fi
if ! sock_answers /run/libvirt/libvirt-sock; then
  log "starting libvirtd"
  setsid nohup libvirtd >/var/log/flexlab/libvirtd.log 2>&1 < /dev/null &
  wait_socket /run/libvirt/libvirt-sock 60 libvirtd
fi
log "libvirtd ready"
log "host ready"
