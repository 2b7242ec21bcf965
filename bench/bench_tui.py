"""Console frame time at 10, 100 and 1000 nodes under a steady event storm
(`bench/frames.rs`), on the main screen and on a node's detail screen: draining the bus
+ engine snapshot + detail reload + App::sync + render of 200x50 cells written to a real
pseudo-terminal (the frames program runs under `script`, which reads the terminal's
output as a terminal emulator would), one frame every FRAME_MS (the console's own
interval, 50 ms) while another thread emits EVENTS_PER_S events into the engine.
Median over RUNS runs of each percentile."""

import json
import os
import shlex
import subprocess
import sys

import lib

SIZES = [int(x) for x in os.environ.get("TUI_NODES", "10,100,1000").split(",")]
SCREENS = os.environ.get("TUI_SCREENS", "main,detail").split(",")
RATE = int(os.environ.get("TUI_EVENTS_PER_S", "5000"))


def frames_bin():
    if os.environ.get("FRAMES_BIN"):
        return os.environ["FRAMES_BIN"]
    r = subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "frames"],
                       cwd=lib.ROOT, env=dict(os.environ, CARGO_TARGET_DIR=lib.TARGET))
    if r.returncode != 0:
        raise RuntimeError("cargo build --release --example frames failed")
    return f"{lib.TARGET}/release/examples/frames"


def run_frames(exe, n, frames, screen, out):
    """One run of `frames` in a real pseudo-terminal (util-linux `script`)."""
    cmd = " ".join(shlex.quote(str(x)) for x in
                   [exe, n, frames, RATE, screen, "pty", out])
    r = subprocess.run(["script", "-q", "-e", "-c", cmd, "/dev/null"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=300)
    try:
        with open(out) as f:
            return json.loads(f.read())
    except (OSError, ValueError):
        raise RuntimeError(f"frames wrote no result (exit {r.returncode}): {r.stderr[-2000:]}")


def main():
    if not lib.have("script"):
        raise RuntimeError("bench tui needs util-linux `script` (a pseudo-terminal)")
    exe = frames_bin()
    frames = 100 if lib.quick() else 300
    d = lib.tmpdir("tui")
    results = []
    for screen in SCREENS:
        for n in SIZES:
            samples = []
            for i in range(lib.runs()):
                s = run_frames(exe, n, frames, screen, f"{d}/{screen}-{n}-{i}.json")
                lib.log(f"tui {screen} n={n}: p50 {s['p50_us']} µs, p99 {s['p99_us']} µs, "
                        f"max {s['max_us']} µs")
                samples.append(s)
            results.append({"screen": screen, "nodes": n, "samples": samples,
                            **{k: lib.median([s[k] for s in samples])
                               for k in ("p50_us", "p99_us", "max_us", "events_per_s")}})
    lib.save_json("tui", results)
    fms = results[0]["samples"][0].get("frame_ms", "?") if results else "?"
    print(f"Console frame time, 200x50 cells through a pseudo-terminal, one frame every "
          f"{fms} ms, {frames} frames per run under {RATE} events/s, "
          f"median of {lib.runs()} runs; {lib.machine()}\n")
    print(lib.table(["screen", "nodes", "p50 ms", "p99 ms", "max ms", "events/s emitted"],
                    [[r["screen"], r["nodes"], lib.fmt(r["p50_us"] / 1000, 2),
                      lib.fmt(r["p99_us"] / 1000, 2), lib.fmt(r["max_us"] / 1000, 2),
                      lib.fmt(r["events_per_s"], 0)]
                     for r in results]))


if __name__ == "__main__":
    sys.exit(main())
