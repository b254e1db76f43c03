#!/bin/sh
# flexlab node image: HTTPS that verifies (busybox wget's TLS checks nothing).
#   https.sh [--header 'Name: value']... [--post-data BODY] https://HOST[:PORT]/PATH
# The same options the agent gives busybox wget. HTTP/1.0 over `openssl s_client`,
# trusting only $FLEXLAB_CA (default /flexlab/cp-ca.pem, put there by the CA initrd
# the Boot Proxy serves, see docs/NODEIMAGE.md), checking the chain, the validity
# window and the host name (or IP). The handshake fails before a byte of the
# request (token included) is sent. Body on stdout, exit 0 on a 2xx answer.
# On failure the last stderr line is a short reason for the agent's log:
#   tls-<unknown-ca|hostname-mismatch|expired|not-yet-valid|verify-failed|no-ca>
#     (preceded by "tls refused reason=... verify_code=... host=... detail=...")
#   connect-failed / no-answer / http-<status>
# $OPENSSL overrides the client binary (tests run the image's copy on the host).
# A body holding @FLEXLAB_NOW@ gets this machine's clock (Unix seconds, microseconds)
# in its place at the moment the request is written: after the handshake, so the
# clock a node reports at registration is not stale by the TLS setup (a second and
# more under TCG emulation), which the Control Plane's 1 s skew check would count.
# With $FLEXLAB_STAMPS naming a file, the clock is read just before the request is
# written (after the handshake) and again when the answer has been read, and the two
# go to that file as "t0 t1": the window of a two-way clock measurement (agent.sh
# measure_http) without the handshake in it.
NOW_MARK=@FLEXLAB_NOW@
STAMPS=${FLEXLAB_STAMPS:-}

CA=${FLEXLAB_CA:-/flexlab/cp-ca.pem}
OPENSSL=${OPENSSL:-openssl}
TMP=${TMPDIR:-/tmp}/https.$$
method=GET
body=
headers=

while [ $# -gt 1 ]; do
    case "$1" in
        --header) headers="$headers$2
"; shift 2 ;;
        --post-data) method=POST; body=$2; shift 2 ;;
        *) echo "https.sh: unknown option $1" >&2; exit 2 ;;
    esac
done
url=$1
case "$url" in
    https://*) ;;
    *) echo "https.sh: not an https:// URL: $url" >&2; echo "bad-url" >&2; exit 2 ;;
esac

rest=${url#https://}
authority=${rest%%/*}
path=${rest#"$authority"}
path=/${path#/}
case "$authority" in
    \[*\]:*) host=${authority%%]:*}; host=${host#[}; port=${authority##*]:} ;;
    \[*\]) host=${authority#[}; host=${host%]}; port=443 ;;
    *:*) host=${authority%:*}; port=${authority##*:} ;;
    *) host=$authority; port=443 ;;
esac
case "$host" in
    *:*) connect="[$host]:$port"; name_check="-verify_ip $host"; sni= ;;
    *[!0-9.]*) connect="$host:$port"; name_check="-verify_hostname $host"; sni="-servername $host" ;;
    *) connect="$host:$port"; name_check="-verify_ip $host"; sni= ;;
esac

refuse() {  # reason code detail
    echo "tls refused reason=$1 verify_code=$2 host=$host detail=$3" >&2
    echo "tls-$1" >&2
    rm -f "$TMP".*
    exit 3
}

[ -s "$CA" ] || refuse no-ca 0 "no_CA_file_$CA"

now_unix() {
    adjtimex 2>/dev/null | awk '/status:/ {nano = int($2 / 8192) % 2} /tv_sec/ {s = $2}
        /tv_usec/ {u = $2} END {if (s) printf "%d.%06d", s, nano ? int(u / 1000) : u}' \
        | grep . || date +%s
}

request() {
    printf '%s %s HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n' "$method" "$path" "$authority"
    printf '%s' "$headers" | while IFS= read -r line; do
        [ -n "$line" ] && printf '%s\r\n' "$line"
    done
    if [ "$method" = POST ]; then
        printf 'Content-Length: %s\r\n\r\n%s' "$(printf '%s' "$body" | wc -c)" "$body"
    else
        printf '\r\n'
    fi
}

# -quiet also means -ign_eof: after the request, read until the server closes.
client() {
    # shellcheck disable=SC2086  # name_check and sni are option pairs on purpose
    "$OPENSSL" s_client -connect "$connect" $sni $name_check -CAfile "$CA" -no-CApath \
        -no-CAstore -verify_return_error -quiet
}

stamped=$STAMPS
case "$body" in *"$NOW_MARK"*) stamped=yes ;; esac
[ -n "$STAMPS" ] && : > "$STAMPS"
case "$stamped" in
    ?*)
        # the request waits in a FIFO until the server's certificate is verified
        # (s_client prints "depth=0 ..." for the leaf), then goes out stamped
        mkfifo "$TMP.fifo"
        client < "$TMP.fifo" > "$TMP.resp" 2> "$TMP.err" &
        pid=$!
        exec 3> "$TMP.fifo"
        waited=0
        while kill -0 "$pid" 2>/dev/null && ! grep -q '^depth=0' "$TMP.err" \
            && [ "$waited" -lt 1500 ]; do
            usleep 10000; waited=$((waited + 1))
        done
        sent=
        if kill -0 "$pid" 2>/dev/null && ! grep -q '^verify error' "$TMP.err"; then
            sent=$(now_unix)
            body=$(printf '%s' "$body" | sed "s/$NOW_MARK/$sent/g")
            request >&3
        fi
        exec 3>&-
        wait "$pid"
        [ -n "$STAMPS" ] && [ -n "$sent" ] && echo "$sent $(now_unix)" > "$STAMPS" ;;
    *)
        request > "$TMP.req"
        client < "$TMP.req" > "$TMP.resp" 2> "$TMP.err" ;;
esac

verify=$(sed -n 's/^verify error:num=\([0-9]*\):\(.*\)$/\1 \2/p' "$TMP.err" | head -n1)
if [ -n "$verify" ]; then
    code=${verify%% *}
    detail=$(echo "${verify#* }" | tr ' ' '_')
    case "$code" in
        2|7|18|19|20|21) refuse unknown-ca "$code" "$detail" ;;
        9) refuse not-yet-valid "$code" "$detail" ;;
        10) refuse expired "$code" "$detail" ;;
        62|64) refuse hostname-mismatch "$code" "$detail" ;;
        *) refuse verify-failed "$code" "$detail" ;;
    esac
fi
status=$(head -n1 "$TMP.resp" | tr -d '\r' | sed -n 's/^HTTP\/1\.[01] \([0-9][0-9][0-9]\).*/\1/p')
if [ -z "$status" ]; then
    if grep -q 'connect:errno\|Connection refused\|No route' "$TMP.err"; then
        echo "$(tail -n1 "$TMP.err")" >&2; echo "connect-failed" >&2
    else
        tail -n2 "$TMP.err" >&2; echo "no-answer" >&2
    fi
    rm -f "$TMP".*
    exit 4
fi
tr -d '\r' < "$TMP.resp" | sed '1,/^$/d'
rm -f "$TMP".*
case "$status" in
    2??) exit 0 ;;
    *) echo "http-$status" >&2; exit 5 ;;
esac
