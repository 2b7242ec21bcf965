"""Console frame time at 10, 100 and 1000 nodes under a steady event storm
(`bench/frames.rs`): engine snapshot + App::sync + draining the bus + render into a
ratatui TestBackend of 200x50 cells, one frame every 10 ms while another thread emits
EVENTS_PER_S events into the engine. Median over RUNS runs of each percentile."""

import json
import os
import subprocess
import sys

import lib

SIZES = [int(x) for x in os.environ.get("TUI_NODES", "10,100,1000").split(",")]
RATE = int(os.environ.get("TUI_EVENTS_PER_S", "5000"))


def frames_bin():
    if os.environ.get("FRAMES_BIN"):
        return os.environ["FRAMES_BIN"]
    r = subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "frames"],
                       cwd=lib.ROOT, env=dict(os.environ, CARGO_TARGET_DIR=lib.TARGET))
    if r.returncode != 0:
        raise RuntimeError("cargo build --release --example frames failed")
    return f"{lib.TARGET}/release/examples/frames"


def main():
    exe = frames_bin()
    frames = 150 if lib.quick() else 400
    results = []
    for n in SIZES:
        samples = []
        for _ in range(lib.runs()):
            r = subprocess.run([exe, str(n), str(frames), str(RATE)], capture_output=True,
                               text=True, timeout=300)
            line = [x for x in r.stdout.splitlines() if x.startswith("{")]
            if not line:
                raise RuntimeError(f"frames printed nothing: {r.stderr[-2000:]}")
            s = json.loads(line[-1])
            lib.log(f"tui n={n}: p50 {s['p50_us']} µs, p99 {s['p99_us']} µs, max {s['max_us']} µs")
            samples.append(s)
        results.append({"nodes": n, "samples": samples,
                        **{k: lib.median([s[k] for s in samples])
                           for k in ("p50_us", "p99_us", "max_us", "events_per_s")}})
    lib.save_json("tui", results)
    print(f"Console frame time, 200x50 cells, {frames} frames per run under {RATE} events/s, "
          f"median of {lib.runs()} runs; {lib.machine()}\n")
    print(lib.table(["nodes", "p50 ms", "p99 ms", "max ms", "events/s emitted"],
                    [[r["nodes"], lib.fmt(r["p50_us"] / 1000, 2), lib.fmt(r["p99_us"] / 1000, 2),
                      lib.fmt(r["max_us"] / 1000, 2), lib.fmt(r["events_per_s"], 0)]
                     for r in results]))


if __name__ == "__main__":
    sys.exit(main())
