#!/bin/bash
# Real-firmware interop check for the Boot Proxy (manual, needs root, qemu, dnsmasq, ipxe, ovmf).
#   bios: SeaBIOS + QEMU's iPXE NIC ROM        uefi: OVMF with its own EDK2 PXE stack (romfile=)
# Namespaces: fltest<hex>p (proxy), fltest<hex>d (site dnsmasq + IPv6 RA), fltest<hex>w (bridge +
# QEMU on a tap). Passes when the firmware chain reaches iPXE and iPXE asks for
# /boot/<mac>.ipxe (404 here: no Control Plane). Everything is torn down on exit.
# Usage: sudo tests/sim/bootproxy_dhcp/firmware_check.sh bios|uefi   (VMTIME=seconds, default 60)
set -u
MODE=${1:?usage: firmware_check.sh bios|uefi}
REPO=$(cd "$(dirname "$0")/../../.." && pwd)
S=$(openssl rand -hex 3); P=fltest${S}p; D=fltest${S}d; W=fltest${S}w
T=$(mktemp -d /tmp/flexlab-fwcheck-XXXXXX); mkdir -p $T/root
MAC=52:54:00:f3:00:01
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill $pid 2>/dev/null; done
  sleep 1
  for n in $P $D $W; do ip netns del $n 2>/dev/null; done
}
trap cleanup EXIT
for n in $P $D $W; do ip netns add $n; ip -n $n link set lo up; done
ip link add fltest${S}pa type veth peer name fltest${S}pb
ip link add fltest${S}da type veth peer name fltest${S}db
ip link set fltest${S}pa netns $P; ip link set fltest${S}pb netns $W
ip link set fltest${S}da netns $D; ip link set fltest${S}db netns $W
ip -n $W link add br0 type bridge; ip -n $W link set br0 up
ip -n $W tuntap add tap0 mode tap
for i in fltest${S}pb fltest${S}db tap0; do ip -n $W link set $i master br0; ip -n $W link set $i up; done
ip -n $P addr add 10.77.0.2/24 dev fltest${S}pa; ip -n $P link set fltest${S}pa up
ip -n $D addr add 10.77.0.1/24 dev fltest${S}da; ip -n $D addr add fd00:77::1/64 dev fltest${S}da; ip -n $D link set fltest${S}da up
cp /usr/lib/ipxe/undionly.kpxe /usr/lib/ipxe/ipxe.efi $T/root/
echo "{\"revision\":\"1\",\"assignments\":[{\"mac\":\"$MAC\",\"cluster\":\"c\",\"hostname\":\"h\",\"role\":\"worker\",\"profile\":\"p\"}]}" > $T/assign.json
ip netns exec $D dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=fltest${S}da --bind-interfaces \
  --dhcp-range=10.77.0.100,10.77.0.150,1h --dhcp-range=fd00:77::,ra-only --enable-ra --no-ping \
  --dhcp-leasefile=$T/leases --log-dhcp > $T/dnsmasq.log 2>&1 &
PIDS+=($!)
cd "$REPO"
ip netns exec $P .venv/bin/python -m bootproxy --interfaces fltest${S}pa --assignments-file $T/assign.json \
  --cache-path $T/cache.json --boot-root $T/root --http-port 8080 --metrics-host 10.77.0.2 > $T/ready 2> $T/proxy.log &
PIDS+=($!)
for i in $(seq 100); do grep -q ready $T/ready && break; sleep 0.1; done
cat $T/ready
START=$(date +%s.%N)
if [ $MODE = bios ]; then
  QEMU=(qemu-system-x86_64 -accel tcg -m 256 -machine graphics=off -display none -serial file:$T/serial.log -no-reboot
        -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=$MAC -boot n)
else
  cp /usr/share/OVMF/OVMF_VARS.fd $T/vars.fd
  QEMU=(qemu-system-x86_64 -accel tcg -m 512 -machine q35 -display none -serial file:$T/serial.log -no-reboot
        -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE.fd -drive if=pflash,format=raw,file=$T/vars.fd
        -netdev tap,id=n0,ifname=tap0,script=no,downscript=no -device virtio-net-pci,netdev=n0,mac=$MAC,romfile= -boot n)
fi
ip netns exec $W timeout ${VMTIME:-60} "${QEMU[@]}" &
QPID=$!; PIDS+=($QPID)
# stop once the script URL was requested (or QEMU ends)
for i in $(seq $(( ${VMTIME:-60} * 5 ))); do
  grep -q 'boot/.*ipxe' $T/serial.log 2>/dev/null && break
  kill -0 $QPID 2>/dev/null || break
  sleep 0.2
done
END=$(date +%s.%N)
kill $QPID 2>/dev/null
echo "proxy log: $T/proxy.log  serial: $T/serial.log"
if tr -d '\r' < $T/serial.log | grep -aq "Filename: http://10.77.0.2:8080/boot/$MAC.ipxe"; then
  echo "PASS $MODE: firmware reached iPXE and asked for the script in $(echo "$END - $START" | bc) s"
  exit 0
fi
echo "FAIL $MODE: no script request; serial tail:"; tr -d '\r' < $T/serial.log | tail -20
exit 1
