#!/bin/bash
# Smoke test of the TC pipeline facts of docs/tc-rule-pipeline.md, with real packets.
# Runs as root inside the test VM (tests/kernel/vm_smoke.test.ts); needs iproute2 and busybox.
#
# Topology: bridge br0 in the VM's root namespace; "pods" pa (10.0.0.1) and pb (10.0.0.2 and
# 10.0.0.3) are network namespaces, each with a veth whose host end (repa, repb: the
# "representors") is a port of br0. Pod pa's egress policy is programmed on repa's clsact
# ingress hook (what the pod sends); its ingress policy on repa's egress hook (what it
# receives). Policy under test: pa may open connections to 10.0.0.2 only (any port); pa accepts
# no new connection; replies pass in both directions.
#
# Every probe prints one line "OUTCOME <name> <value>"; the test asserts on those lines.
set -eu
export LC_ALL=C

BB=$(command -v busybox)
TC=tc
ns() { ip netns exec "$@"; }

cleanup() {
  for p in $(jobs -p); do kill "$p" 2>/dev/null || true; done
  ip netns del pa 2>/dev/null || true
  ip netns del pb 2>/dev/null || true
  ip link del br0 2>/dev/null || true
}
trap cleanup EXIT

# --- topology -------------------------------------------------------------------------------
ip link add br0 type bridge stp_state 0
ip link set br0 up
for p in pa pb; do
  ip netns add "$p"
  ip link add "rep${p#p}" type veth peer name eth0 netns "$p"
  ns "$p" sysctl -qw net.ipv6.conf.all.disable_ipv6=1
  ns "$p" ip link set lo up
  ns "$p" ip link set eth0 up
  ip link set "rep${p#p}" master br0 up
done
ns pa ip addr add 10.0.0.1/24 dev eth0
ns pb ip addr add 10.0.0.2/24 dev eth0
ns pb ip addr add 10.0.0.3/24 dev eth0

# TCP servers in pod pb: 8080 (answers "hello-8080") and 7000 (answers "hello-7000").
# Pod pa also listens on 9000 to show that pa's ingress is isolated.
ns pb "$BB" nc -ll -p 8080 -e echo hello-8080 &
ns pb "$BB" nc -ll -p 7000 -e echo hello-7000 &
ns pa "$BB" nc -ll -p 9000 -e echo hello-9000 &

# --- TC program on repa ---------------------------------------------------------------------
# Chain 0 (dispatch) on both hooks: ARP passes; IPv4 goes through conntrack, then to the policy
# chain; anything else is dropped (explicit verdict: a chain without one fails open).
$TC qdisc add dev repa clsact
for hook in ingress egress; do
  $TC filter add dev repa "$hook" chain 0 pref 1 protocol arp flower action pass
  $TC filter add dev repa "$hook" chain 0 pref 2 handle 2 protocol ip flower ct_state -trk \
    action ct pipe action goto chain 1
  $TC filter add dev repa "$hook" chain 0 pref 100 protocol all flower action drop
  $TC filter add dev repa "$hook" chain 1 pref 1 protocol ip flower ct_state +trk+est \
    action pass
done
# Pod egress (repa ingress hook): new connections to 10.0.0.2 are committed and pass. A new TCP
# connection to 10.0.0.3:7000 passes WITHOUT ct commit (to show its replies are then dropped).
$TC filter add dev repa ingress chain 1 pref 2 protocol ip flower ct_state +trk+new \
  dst_ip 10.0.0.2 action ct commit action pass
$TC filter add dev repa ingress chain 1 pref 3 protocol ip flower ct_state +trk+new \
  dst_ip 10.0.0.3 ip_proto tcp dst_port 7000 action pass
$TC filter add dev repa ingress chain 1 pref 100 protocol all flower action drop
# Pod ingress (repa egress hook): isolated, nothing new is allowed.
$TC filter add dev repa egress chain 1 pref 100 protocol all flower action drop

# --- probes ---------------------------------------------------------------------------------
ping_probe() { # name netns address
  if ns "$2" "$BB" ping -c 1 -W 2 "$3" >/dev/null 2>&1; then
    echo "OUTCOME $1 reachable"
  else
    echo "OUTCOME $1 blocked"
  fi
}
tcp_probe() { # name netns address port
  local got
  got=$(ns "$2" timeout 6 "$BB" nc -w 3 "$3" "$4" </dev/null 2>/dev/null || true)
  if [ "$got" = "hello-$4" ]; then
    echo "OUTCOME $1 reachable"
  else
    echo "OUTCOME $1 blocked"
  fi
}
hits() { # dev hook chain pref: packets counted by that filter's first action
  $TC -s filter show dev "$1" "$2" chain "$3" pref "$4" |
    sed -n 's/.*Sent [0-9]* bytes \([0-9]*\) pkt.*/\1/p' | head -n 1
}
echo_requests_at_pb() { # ICMP echo requests received by pod pb so far
  ns pb awk '/^Icmp:/ { if (!n) { for (i = 2; i <= NF; i++) if ($i == "InEchos") f = i; n = 1 }
    else print $f }' /proc/net/snmp
}

# ping_delivered PROBE OUTCOME: pings 10.0.0.2 from pa as PROBE, then reports as OUTCOME whether
# pb received the echo request (whatever happened to the reply).
ping_delivered() {
  local before
  before=$(echo_requests_at_pb)
  ping_probe "$1" pa 10.0.0.2
  if [ "$(echo_requests_at_pb)" -gt "$before" ]; then
    echo "OUTCOME $2 yes"
  else
    echo "OUTCOME $2 no"
  fi
}

# Wait until the TCP servers listen (busybox nc forks per connection with -ll).
for _ in $(seq 1 50); do
  if ns pb ss -ltn | grep -q ':7000 ' && ns pa ss -ltn | grep -q ':9000 '; then break; fi
  sleep 0.1
done

ping_probe ping-allowed pa 10.0.0.2
ping_probe ping-denied pa 10.0.0.3
tcp_probe tcp-allowed pa 10.0.0.2 8080
tcp_probe tcp-denied pa 10.0.0.3 8080
ping_probe ping-into-isolated pb 10.0.0.1
tcp_probe tcp-into-isolated pb 10.0.0.1 9000
tcp_probe tcp-without-commit pa 10.0.0.3 7000
if [ "$(hits repa ingress 1 3)" -gt 0 ]; then
  echo "OUTCOME without-commit-syn-passed yes"
else
  echo "OUTCOME without-commit-syn-passed no"
fi
if ns pa ip neigh show 10.0.0.2 | grep -q lladdr; then
  echo "OUTCOME arp-resolved yes"
else
  echo "OUTCOME arp-resolved no"
fi

# --- atomic update: new chain 2 built with tc -batch, dispatch swapped with filter replace ----
batch=$(mktemp)
cat >"$batch" <<'EOF'
filter add dev repa ingress chain 2 pref 1 protocol ip flower ct_state +trk+est action pass
filter add dev repa ingress chain 2 pref 2 protocol ip flower ct_state +trk+new dst_ip 10.0.0.3 action ct commit action pass
filter add dev repa ingress chain 2 pref 100 protocol all flower action drop
filter replace dev repa ingress chain 0 pref 2 handle 2 protocol ip flower ct_state -trk action ct pipe action goto chain 2
filter del dev repa ingress chain 1
EOF
if $TC -batch "$batch"; then
  echo "OUTCOME batch-swap applied"
else
  echo "OUTCOME batch-swap failed"
fi
rm -f "$batch"
if $TC filter show dev repa ingress chain 1 2>/dev/null | grep -q .; then
  echo "OUTCOME old-chain-deleted no"
else
  echo "OUTCOME old-chain-deleted yes"
fi
ping_delivered swapped-ping-old-allowed final-drop-request-delivered
ping_probe swapped-ping-new-allowed pa 10.0.0.3
tcp_probe swapped-tcp-new-allowed pa 10.0.0.3 8080
tcp_probe swapped-tcp-7000-committed pa 10.0.0.3 7000

# --- fail open: a chain without a final verdict accepts what matches nothing ------------------
# Without chain 2's drop, a new echo request to 10.0.0.2 matches nothing there and is delivered
# (its reply is still dropped: it was never committed, so pa's isolated ingress sees it as new).
$TC filter del dev repa ingress chain 2 pref 100
ping_delivered no-final-drop-ping no-final-drop-request-delivered

# --- flower syntax the agent relies on ---------------------------------------------------------
$TC qdisc add dev repb clsact
syntax() { # name, tc filter arguments after "dev repb ingress chain 10"
  local name=$1
  shift
  if $TC filter add dev repb ingress chain 10 "$@" action pass 2>/dev/null; then
    echo "OUTCOME syntax-$name accepted"
  else
    echo "OUTCOME syntax-$name rejected"
  fi
}
syntax port-range protocol ip flower ip_proto tcp dst_port 8000-8100
syntax sctp protocol ip flower ip_proto sctp dst_port 5000
syntax ipv6-prefix protocol ipv6 flower dst_ip 2001:db8::/64 ip_proto udp dst_port 53
syntax vlan protocol 802.1q flower vlan_id 10 vlan_ethtype ipv4 dst_ip 10.1.0.0/16
syntax qinq protocol 802.1ad flower vlan_id 10 vlan_ethtype 802.1q cvlan_id 20 \
  cvlan_ethtype ipv4 dst_ip 10.1.0.0/16

echo "SMOKE DONE"
