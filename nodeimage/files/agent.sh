#!/bin/sh
# flexlab node agent (busybox sh). "We run your OS in RAM and bulk data gets
# offloaded to the storage device": prepare the data disk, collect hardware
# facts, get an address by DHCP, check the clock against the Control Plane,
# register with the one-time join token and report Ready.
#
# Every line the harness reads starts with "FLEXLAB-AGENT: " on the serial
# console; docs/NODEIMAGE.md lists them. Kernel command line:
#   flexlab.cp=<url> flexlab.token=<join token> flexlab.mac=<mac> [flexlab.poweroff=1]
#   [flexlab.diskwait=<s>: how long to wait for a qualifying disk, default 15]
#   [flexlab.timeurl=<url>: set the clock from this {"unix": ...} URL before the check,
#    only when the site's DHCP offers no NTP server (option 42)]
# With option 42 in the lease the clock is set by NTP: chronyd -q (Debian's busybox has
# no ntpd applet) steps it once from the first server and exits.
# An https:// Control Plane is reached through /flexlab/https.sh, which verifies its
# certificate against /flexlab/cp-ca.pem (the CA initrd delivered with the boot);
# a certificate that does not verify stops the agent before the token is sent.

DATA_LABEL=flexlab-data
DATA_MOUNT=/mnt/data
MIN_DISK_BYTES=10000000000

log() { echo "FLEXLAB-AGENT: $*"; }
# guest seconds since boot, for the progress lines (see /init)
uptime_s() { cut -d' ' -f1 /proc/uptime; }

cmdline_arg() {
    for word in $(cat /proc/cmdline); do
        case "$word" in "$1="*) echo "${word#*=}"; return 0 ;; esac
    done
    return 1
}

json_str() { printf '"%s"' "$(printf '%s' "$1" | tr -d '"\\' | tr '\n\t\r' '   ')"; }

# This clock to the microsecond (busybox date has whole seconds). adjtimex's
# time.tv_usec holds nanoseconds once the kernel's status has STA_NANO (8192), as
# chronyd leaves it after a step.
now_unix() {
    adjtimex 2>/dev/null | awk '/status:/ {nano = int($2 / 8192) % 2} /tv_sec/ {s = $2}
        /tv_usec/ {u = $2} END {if (s) printf "%d.%06d", s, nano ? int(u / 1000) : u}' \
        | grep . || date +%s
}

# Disks the agent considers: real block devices, not loop/ram/optical.
list_disks() {
    for dir in /sys/block/*; do
        name=${dir##*/}
        case "$name" in loop*|ram*|sr*|fd*|zram*|dm-*|md*|nbd*) continue ;; esac
        [ -r "$dir/size" ] || continue
        echo "$name $(( $(cat "$dir/size") * 512 ))"
    done
}

first_big_disk() {
    list_disks | while read -r name bytes; do
        if [ "$bytes" -ge "$MIN_DISK_BYTES" ]; then echo "$name $bytes"; break; fi
    done
}

# The ext2 volume label (superblock at 1024, s_magic at +56, s_volume_name at +120).
read_label() {
    magic=$(dd if="/dev/$1" bs=1 skip=1080 count=2 2>/dev/null | hexdump -e '2/1 "%02x"')
    [ "$magic" = "53ef" ] || return 0
    dd if="/dev/$1" bs=1 skip=1144 count=16 2>/dev/null | tr -d '\000'
}

# Wait for a qualifying disk while the kernel may still be adding disks (AHCI/SCSI probe
# asynchronously): at most DISK_WAIT_S, and no longer once some disk is there and the list
# has not changed for DISK_SETTLE_S (a disk already probed too small will not grow). A VM
# whose only disk is small used to wait the whole 15 s: under TCG on a loaded CI host,
# minutes of wall time (vm-reject's smalldisk).
DISK_SETTLE_S=3
prepare_disk() {
    waited=0
    steady=0
    found=$(first_big_disk)
    seen=$(list_disks | tr ' \n' ':,')
    [ -z "$found" ] && log "disk waiting min_bytes=$MIN_DISK_BYTES for_s=$DISK_WAIT_S uptime=$(uptime_s)"
    while [ -z "$found" ] && [ "$waited" -lt "$DISK_WAIT_S" ]; do
        [ -n "$seen" ] && [ "$steady" -ge "$DISK_SETTLE_S" ] && break
        sleep 1; waited=$((waited + 1))
        now=$(list_disks | tr ' \n' ':,')
        if [ "$now" = "$seen" ]; then steady=$((steady + 1)); else steady=0; seen=$now; fi
        found=$(first_big_disk)
    done
    if [ -z "$found" ]; then
        log "disk none min_bytes=$MIN_DISK_BYTES waited_s=$waited disks=${seen:-none} uptime=$(uptime_s)"
        return 1
    fi
    set -- $found
    dev=$1; bytes=$2
    fresh=0
    if [ "$(read_label "$dev")" != "$DATA_LABEL" ]; then
        log "disk formatting dev=$dev size_bytes=$bytes reason=no-flexlab-label uptime=$(uptime_s)"
        # Few, large inodes: the disk holds bulk data, and this keeps mkfs fast.
        if ! mke2fs -q -F -L "$DATA_LABEL" -i 1048576 "/dev/$dev" >/tmp/mkfs.log 2>&1; then
            log "disk error=mkfs-failed dev=$dev detail=$(tail -n1 /tmp/mkfs.log)"
            return 1
        fi
        fresh=1
        log "disk formatted dev=$dev label=$DATA_LABEL uptime=$(uptime_s)"
    fi
    mkdir -p "$DATA_MOUNT"
    if ! mount -t ext2 "/dev/$dev" "$DATA_MOUNT" 2>/tmp/mount.log; then
        log "disk error=mount-failed dev=$dev detail=$(tail -n1 /tmp/mount.log)"
        return 1
    fi
    marker="$DATA_MOUNT/.flexlab/marker"
    mkdir -p "$DATA_MOUNT/.flexlab"
    if [ -f "$marker" ]; then
        boots=$(sed -n 's/^boots=//p' "$marker")
        boots=$(( ${boots:-0} + 1 ))
        data=intact
    elif [ "$fresh" = 1 ]; then
        boots=1; data=new
    else
        boots=1; data=missing
    fi
    echo "boots=$boots" > "$marker.tmp" && mv "$marker.tmp" "$marker" && sync
    log "disk dev=$dev size_bytes=$bytes mount=$DATA_MOUNT data=$data boots=$boots"
    return 0
}

collect_facts() {
    arch=$(uname -m)
    cores=$(grep -c '^processor' /proc/cpuinfo)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    mem=$((mem_kb * 1024))
    disks=""
    for entry in $(list_disks | tr ' ' ':'); do
        disks="$disks${disks:+,}{\"name\":\"${entry%%:*}\",\"size_bytes\":${entry##*:}}"
    done
    nics=""
    for dir in /sys/class/net/*; do
        name=${dir##*/}
        [ "$name" = lo ] && continue
        nics="$nics${nics:+,}{\"name\":\"$name\",\"mac\":\"$(cat "$dir/address")\"}"
    done
    if [ -d /sys/firmware/efi ]; then firmware=efi; else firmware=bios; fi
    dmi=/sys/class/dmi/id
    vendor="$(cat $dmi/sys_vendor 2>/dev/null) $(cat $dmi/product_name 2>/dev/null)"
    vendor="$vendor; bios $(cat $dmi/bios_vendor 2>/dev/null) $(cat $dmi/bios_version 2>/dev/null)"
    vendor=$(printf '%s' "$vendor" | cut -c1-200)  # the API allows 256
    FACTS_HEAD="\"arch\":\"$arch\",\"cpu_cores\":$cores,\"memory_bytes\":$mem"
    FACTS_HEAD="$FACTS_HEAD,\"disks\":[$disks],\"nics\":[$nics],\"firmware\":\"$firmware\""
    FACTS_HEAD="$FACTS_HEAD,\"vendor\":$(json_str "$vendor")"
    log "facts {$FACTS_HEAD}"
}

pick_nic() {
    want=$(echo "$1" | tr 'A-F-' 'a-f:')
    for dir in /sys/class/net/*; do
        name=${dir##*/}
        [ "$name" = lo ] && continue
        if [ -z "$want" ] || [ "$(cat "$dir/address")" = "$want" ]; then echo "$name"; return 0; fi
    done
    return 1
}

dhcp() {
    nic=$(pick_nic "$MAC")
    if [ -z "$nic" ]; then
        log "dhcp failed reason=no-nic mac=${MAC:-any}"
        return 1
    fi
    ip link set "$nic" up
    if udhcpc -i "$nic" -s /flexlab/udhcpc.script -n -q -t 8 -T 2 -O ntpsrv \
        >/tmp/udhcpc.log 2>&1; then
        log "dhcp ok nic=$nic $(cat /run/flexlab-dhcp 2>/dev/null)"
        # the leased address goes with the NIC's facts (the site's DNS names it)
        ip=$(sed -n 's/^ip=\([0-9.]*\).*/\1/p' /run/flexlab-dhcp 2>/dev/null)
        mac=$(cat "/sys/class/net/$nic/address")
        [ -n "$ip" ] && FACTS_HEAD=$(echo "$FACTS_HEAD" \
            | sed "s/\"mac\":\"$mac\"}/\"mac\":\"$mac\",\"ipv4\":\"$ip\"}/")
        return 0
    fi
    log "dhcp failed nic=$nic reason=no-lease"
    return 1
}

CA_FILE=/flexlab/cp-ca.pem

# http [--header H]... [--post-data D] URL: body on stdout, last error line in
# /tmp/http.err. https:// goes through the verifying client (https.sh); a refused
# certificate is logged as "tls refused reason=..." and leaves tls-<reason> as the
# error; with HTTP_STAMPS naming a file, https.sh writes there the clock just before the
# request left and when the answer was in (after the handshake). busybox 1.35 wget -T
# crashes (static build), so timeout(1) bounds both.
http() {
    eval "last=\${$#}"
    case "$last" in
        https://*)
            FLEXLAB_CA=$CA_FILE FLEXLAB_STAMPS=$HTTP_STAMPS \
                timeout 15 /bin/sh /flexlab/https.sh "$@" 2>/tmp/http.err
            rc=$?
            refused=$(grep '^tls refused ' /tmp/http.err)
            # stderr: the caller captures stdout (the body), the console must see this.
            [ -n "$refused" ] && log "$refused url=$last" >&2
            return $rc ;;
        *) timeout 15 wget -q -O - "$@" 2>/tmp/http.err ;;
    esac
}

# tls_ca: say which CA this boot trusts for the Control Plane (or that none came).
tls_ca() {
    case "$CP" in https://*) ;; *) return 0 ;; esac
    if [ -s "$CA_FILE" ]; then
        fp=$(openssl x509 -noout -fingerprint -sha256 -in "$CA_FILE" 2>/dev/null | sed 's/.*=//')
        subject=$(openssl x509 -noout -subject -nameopt oneline -in "$CA_FILE" 2>/dev/null \
            | sed 's/^subject= *//' | tr ' ' '_')
        log "tls ca=$CA_FILE sha256=${fp:-unreadable} subject=${subject:-unknown}"
    else
        log "tls ca=none reason=no-ca-initrd"
    fi
}

# Optional time sync (flexlab.timeurl=<url answering {"unix": <float>}>), standing in
# for the site NTP server a real node would use; busybox has no NTP client here.
# Needed because QEMU starts its RTC on a whole second, so a VM boots up to 1 s
# behind the host. Without a timeurl the clock is left as the hardware set it.
# A step is never trusted: it rests on one measurement and on this guest waking from
# a sleep on time, and a TCG guest on a starved host can be held up for seconds (a
# VM's clock was once 1.8 s behind right after its one step, and Rejected). So the
# clock is measured again after each step, and stepped again, until a measurement
# bounds it within SYNC_GOOD_S of the source (or SYNC_STEPS steps were made). That
# last measurement is after the last step and decides the Control Plane's verdict,
# so check_clock reports it when the source is the Control Plane's own time
# (SYNCED_URL) instead of asking again.
SYNC_GOOD_S=0.5
SYNC_STEPS=3

# step_clock OFFSET: set this clock back by OFFSET s (this clock minus the source's).
# busybox date sets whole seconds, so this sleeps to the next whole second of corrected
# time and sets that second; a late wake-up makes the step late by as much.
step_clock() {
    set -- $(awk -v o="$1" -v n="$(now_unix)" 'BEGIN {
        t = n - o; target = int(t) + 1; printf "%d %.3f", target, target - t }')
    sleep "$2"
    date -u -s "@$1" >/dev/null
}

sync_time() {
    SYNCED_URL=""
    steps=0
    while :; do
        measure_http "$TIMEURL" "$SYNC_GOOD_S" || {
            log "timesync failed reason=$(tail -n1 /tmp/http.err | tr ' ' '_') steps=$steps"
            return 1
        }
        [ "$steps" -eq 0 ] && first=$CLOCK_OFFSET
        verdict=$(awk -v o="$CLOCK_OFFSET" -v e="$CLOCK_ERROR" -v g="$SYNC_GOOD_S" \
            'BEGIN {s = o < 0 ? -o : o; print (s + e <= g ? "ok" : "off")}')
        if [ "$verdict" = ok ] || [ "$steps" -ge "$SYNC_STEPS" ]; then
            log "timesync source=$TIMEURL skew=$first steps=$steps residual=$CLOCK_OFFSET error=$CLOCK_ERROR $verdict"
            [ "$verdict" = ok ] || return 1
            SYNCED_URL=$TIMEURL
            return 0
        fi
        step_clock "$CLOCK_OFFSET"
        steps=$((steps + 1))
    done
}

# The site's time source from the lease (DHCP option 42), first of the list; empty: none.
ntp_server() {
    sed -n 's/.* ntp=\([^ ,]*\).*/\1/p' /run/flexlab-dhcp 2>/dev/null
}

# The X of chronyd's last "System clock wrong by X seconds" line on stdin; empty: none.
# X is the correction chrony applies, so the clock's own offset from the server is -X.
chrony_wrong() {
    sed -n 's/.*System clock wrong by \([-0-9.]*\) seconds.*/\1/p' | tail -n1
}

# Set the clock by NTP: chronyd -q measures against the server, steps the clock once
# and exits ("System clock wrong by X seconds (step)"). No answer leaves the clock as
# it was, and the Control Plane judges it as reported (a node more than 1 s off is
# Rejected with the skew as its reason).
sync_ntp() {
    out=$(timeout 20 /usr/sbin/chronyd -q -u root -t 12 "server $1 iburst maxsamples 4" 2>&1)
    wrong=$(echo "$out" | chrony_wrong)
    if [ -z "$wrong" ]; then
        log "ntp failed server=$1 reason=$(echo "$out" | tail -n1 | cut -c22- | tr ' ' '_')"
        return 1
    fi
    log "ntp server=$1 offset=$wrong stepped ok"
}

# After the step, measure the clock's residual offset from the same server without
# changing it (chronyd -Q: "System clock wrong by X seconds (ignored)") and keep it for
# the registration: the Control Plane judges this figure (within 1 s of the site's time
# source), not clock_unix against its own clock at arrival, which also counts the
# request's transit (1-2 s under TCG on a loaded host). $2: a port other than 123.
measure_ntp() {
    out=$(timeout 20 /usr/sbin/chronyd -Q -u root -t 12 \
        "server $1 iburst maxsamples 4${2:+ port $2}" 2>&1)
    wrong=$(echo "$out" | chrony_wrong)
    if [ -z "$wrong" ]; then
        log "ntp measure failed server=$1 reason=$(echo "$out" | tail -n1 | cut -c22- | tr ' ' '_')"
        return 1
    fi
    offset=$(awk -v w="$wrong" 'BEGIN {printf "%.6f", -w}')
    CLOCK_FACTS=",\"clock_source\":\"ntp\",\"clock_server\":\"$1\",\"clock_offset_s\":$offset"
    log "ntp server=$1 measured offset=$offset"
}

# At most CLOCK_TRIES two-way exchanges, keeping the one with the shortest round trip:
# the least disturbed by the network and by this guest's own slowness (a TCG guest on a
# loaded host takes a second and more to run wget), so its bound is the tightest. One
# exchange is enough once it decides the Control Plane's verdict (within CLOCK_LIMIT_S
# even at the far end of its bound, or beyond it even at the near end; the time sync
# asks the same of its own limit): another could only narrow the bound, and costs a
# request per node in a boot storm.
CLOCK_TRIES=3
CLOCK_LIMIT_S=1

# measure_http URL [LIMIT]: this clock against URL's {"unix": ...} by two-way exchanges (stamp
# t0, GET, stamp t1). The server read its clock between t0 and t1, so this clock minus
# the server's is (t0 + t1) / 2 - server, right to within (t1 - t0) / 2, however slow
# the request, the answer or this machine (over https the window starts after the
# handshake: see http). Sets CLOCK_OFFSET, CLOCK_ERROR, CLOCK_LOCAL
# (t1) and CLOCK_CP (the server's time) from the exchange with the shortest round trip,
# and CLOCK_TRY (exchanges made); fails, the reason in /tmp/http.err, if none answered.
# LIMIT (default CLOCK_LIMIT_S) is the limit an exchange must decide to end early.
measure_http() {
    limit=${2:-$CLOCK_LIMIT_S}
    HTTP_STAMPS=/tmp/clock.stamps
    best=""
    CLOCK_TRY=0
    while [ "$CLOCK_TRY" -lt "$CLOCK_TRIES" ]; do
        CLOCK_TRY=$((CLOCK_TRY + 1))
        rm -f "$HTTP_STAMPS"
        t0=$(now_unix)
        resp=$(http "$1") || continue
        t1=$(now_unix)
        # over https, the window without the TLS handshake (seconds under TCG)
        [ -s "$HTTP_STAMPS" ] && read -r t0 t1 < "$HTTP_STAMPS"
        server=$(echo "$resp" | sed -n 's/.*"unix"[^0-9]*\([0-9.]*\).*/\1/p')
        if [ -z "$server" ]; then echo "no-unix-field" >> /tmp/http.err; continue; fi
        best=$(awk -v a="$t0" -v b="$t1" -v s="$server" -v best="$best" 'BEGIN {
            err = (b - a) / 2
            if (best != "") { split(best, p, " "); if (p[2] + 0 <= err) { print best; exit } }
            printf "%.6f %.6f %s %s\n", (a + b) / 2 - s, err, b, s }')
        set -- "$1" $best
        awk -v o="$2" -v e="$3" -v l="$limit" \
            'BEGIN {s = o < 0 ? -o : o; exit !(s + e <= l || s - e > l)}' && break
    done
    rm -f "$HTTP_STAMPS"; HTTP_STAMPS=""
    [ -n "$best" ] || return 1
    set -- $best
    CLOCK_OFFSET=$1; CLOCK_ERROR=$2; CLOCK_LOCAL=$3; CLOCK_CP=$4
}

# Measure this clock against the Control Plane's time (or take the time sync's last
# measurement of it: see sync_time) and, where no NTP measurement was
# made (the site offers no option 42, or the sync failed), report that measurement for
# the registration: the Control Plane judges the offset with its error bound (rejecting
# only a clock beyond 1 s by more than the bound), not clock_unix against its own clock
# at arrival, which also counts the request's transit and this guest building and
# sending it after the stamp (over 1 s under TCG on a starved host).
check_clock() {
    url="$CP/api/v1/time"
    [ "$SYNCED_URL" = "$url" ] || measure_http "$url" || {
        log "clock failed reason=$(tail -n1 /tmp/http.err | tr ' ' '_')"
        return 1
    }
    verdict=$(awk -v o="$CLOCK_OFFSET" -v e="$CLOCK_ERROR" -v l="$CLOCK_LIMIT_S" \
        'BEGIN {s = o < 0 ? -o : o; print (s - e <= l ? "ok" : "off")}')
    log "clock local=$CLOCK_LOCAL cp=$CLOCK_CP skew=$CLOCK_OFFSET error=$CLOCK_ERROR tries=$CLOCK_TRY $verdict"
    [ -n "$CLOCK_FACTS" ] || CLOCK_FACTS=",\"clock_source\":\"http\",\"clock_server\":$(json_str "$url"),\"clock_offset_s\":$CLOCK_OFFSET,\"clock_error_s\":$CLOCK_ERROR"
}

register() {
    # over https the clock is stamped after the handshake (https.sh), else now
    stamp=$(now_unix)
    case "$CP" in https://*) stamp=@FLEXLAB_NOW@ ;; esac
    body="{\"mac\":\"$MAC\",\"facts\":{$FACTS_HEAD,\"clock_unix\":$stamp$CLOCK_FACTS}}"
    resp=$(http --header "Content-Type: application/json" --header "Authorization: Bearer $TOKEN" \
        --post-data "$body" "$CP/api/v1/nodes/register") || {
        why=$(tail -n1 /tmp/http.err | tr ' ' '_')
        case "$why" in
            tls-*) log "registered state=refused reason=$why" ;;
            *) log "registered state=error reason=$why" ;;
        esac
        return 1
    }
    state=$(echo "$resp" | sed -n 's/.*"state" *: *"\([A-Za-z]*\)".*/\1/p')
    NODE_TOKEN=$(echo "$resp" | sed -n 's/.*"node_token" *: *"\([^"]*\)".*/\1/p')
    reasons=$(echo "$resp" | sed -n 's/.*"reasons" *: *\(\[[^]]*\]\).*/\1/p')
    [ "$reasons" = "[]" ] && reasons=""
    log "registered state=${state:-unknown}${reasons:+ reasons=$reasons}"
    [ "$state" = Registered ] && [ -n "$NODE_TOKEN" ]
}

report_ready() {
    if http --header "Content-Type: application/json" --header "Authorization: Bearer $NODE_TOKEN" \
        --post-data '{}' "$CP/api/v1/nodes/$MAC/ready" >/dev/null; then
        log "ready ok"
        return 0
    fi
    log "ready failed reason=$(tail -n1 /tmp/http.err | tr ' ' '_')"
    return 1
}

finish() {
    log "done result=$1"
    if [ "$POWEROFF" = 1 ]; then
        log "poweroff"
        sync; umount "$DATA_MOUNT" 2>/dev/null
        poweroff -f
    fi
}

CP=$(cmdline_arg flexlab.cp)
TOKEN=$(cmdline_arg flexlab.token)
MAC=$(cmdline_arg flexlab.mac | tr 'A-F-' 'a-f:')
POWEROFF=$(cmdline_arg flexlab.poweroff)
TIMEURL=$(cmdline_arg flexlab.timeurl)
DISK_WAIT_S=$(cmdline_arg flexlab.diskwait | tr -cd 0-9)
DISK_WAIT_S=${DISK_WAIT_S:-15}
log "start cp=${CP:-none} mac=${MAC:-none} uptime=$(uptime_s)"

prepare_disk
collect_facts
if [ -z "$CP" ]; then
    log "registered state=skipped reason=no-flexlab.cp"
    finish skipped
    exit 0
fi
[ -n "$MAC" ] || MAC=$(cat "/sys/class/net/$(pick_nic '')/address" 2>/dev/null)
if ! dhcp; then finish failed; exit 1; fi
tls_ca
NTP=$(ntp_server)
CLOCK_FACTS=""
SYNCED_URL=""
if [ -n "$NTP" ]; then
    sync_ntp "$NTP" && measure_ntp "$NTP"
elif [ -n "$TIMEURL" ]; then
    sync_time
fi
check_clock
if register && report_ready; then finish ok; exit 0; fi
finish failed
exit 1
