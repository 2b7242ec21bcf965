#!/usr/bin/env bash
# pxelab benchmarks against the servers users run today. Prints markdown tables.
#
#   bench/run.sh [dhcp|tftp|http|storm|tui|memory|all]   (default: all; memory runs alone)
#
# Needs root (network namespaces). Every server and load generator runs inside
# namespaces this script creates (pxb-*) on their own loopback or on a veth pair between
# two of them: nothing is sent on this machine's interfaces. Namespaces, processes and
# temp files are removed at the end, on error and on Ctrl-C.
#
# Knobs (environment): RUNS=3 (repetitions, medians reported), QUICK=1 (shorter runs),
# PXELAB_BIN=path (skip the release build), HTTP_SERVERS / TFTP_SERVERS / DHCP_SERVERS
# (comma lists to run a subset), DHCP_RATES, DHCP_CLIENTS, DHCP_MODES (server,proxy,avalanche),
# DHCP_DEEP_CLIENT=1 (a 4 MiB queue for perfdhcp's socket in the avalanche), STORM_NODES,
# TUI_NODES, MEM_LEASES / MEM_UNKNOWN / MEM_ROUNDS / MEM_PEERS / MEM_ARENA_MAX /
# MEM_HEAPTRACK (memory at the bound),
# PXB_RESULTS (where JSON results go; default bench/results).
set -euo pipefail
cd "$(dirname "$0")"
# The checkout's own target/ and bench/tools/ unless told otherwise (no machine paths).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$(cd .. && pwd)/target}"
export PXB_TOOLS="${PXB_TOOLS:-$PWD/tools}"
export PATH="$PATH:/usr/sbin:/sbin:$PXB_TOOLS/bin"
[ "$(id -u)" = 0 ] || { echo "bench/run.sh needs root (network namespaces)" >&2; exit 2; }

# Load generators and peers the apt list of .ci/run does not carry.
need() { command -v "$1" >/dev/null 2>&1 || { echo "installing $2" >&2;
  DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq "$2" >/dev/null; }; }

what="${1:-all}"
run() { timeout "${BENCH_TIMEOUT:-3600}" python3 "$@"; }
case "$what" in
  http)  need wrk wrk; need nginx nginx-light; run bench_http.py ;;
  tftp)  need atftp atftp; run bench_tftp.py ;;
  dhcp)  need tcpdump tcpdump; run bench_dhcp.py ;;
  storm) run bench_storm.py ;;
  tui)   run bench_tui.py ;;
  memory) run bench_memory.py ;;
  all)
    need wrk wrk; need nginx nginx-light; need atftp atftp; need tcpdump tcpdump
    for b in bench_http.py bench_tftp.py bench_dhcp.py bench_storm.py bench_tui.py; do
      run "$b"; echo
    done ;;
  *) echo "usage: bench/run.sh [dhcp|tftp|http|storm|tui|memory|all]" >&2; exit 2 ;;
esac
