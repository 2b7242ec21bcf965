#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each) and fails on any crash.
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). A crash
# leaves its input in fuzz/artifacts/TARGET/; add it as a regression unit test.
# Usage: fuzz/run.sh [SECONDS_PER_TARGET]
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-60}"
targets=(tftp_packet tftp_path http_range http_route dhcp_request lab_yaml lab_edit)
cargo +nightly fuzz build -O
mkdir -p logs
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t"
  # Start from the checked-in seeds, where a target has some.
  if [ -d "seeds/$t" ]; then cp -n seeds/"$t"/* "corpus/$t/" 2>/dev/null || true; fi
  echo "== $t (${secs} s)"
  # -max_total_time bounds the run; -timeout flags one input slower than 10 s.
  if ! cargo +nightly fuzz run -O "$t" "corpus/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"logs/$t.log" 2>&1; then
    tail -40 "logs/$t.log"
    echo "fuzz: $t FAILED (input in fuzz/artifacts/$t/)"
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE|^stat::number_of_executed_units|^stat::peak_rss_mb' "logs/$t.log" || true
done
echo "fuzz: every target ran ${secs} s without a crash"
