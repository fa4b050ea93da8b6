#!/usr/bin/env bash
# Installs what the multi-node test rig (internal/clustertest) runs, if missing:
# ip (iproute2), iptables, nsenter and unshare (util-linux), mount and hostname.
# The engine itself comes from ensure-docker.sh. The rig needs root.
set -euo pipefail
if [ "$(id -u)" -ne 0 ]; then
	echo "ensure-cluster-tools: multi-node tests need root (namespaces, bridges, iptables)" >&2
	exit 1
fi
missing=()
for pair in ip:iproute2 iptables:iptables nsenter:util-linux unshare:util-linux mount:mount hostname:hostname; do
	command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "ensure-cluster-tools: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq "${missing[@]}" >/dev/null
