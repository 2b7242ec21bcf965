"""Boot storm: 100, 500 and 1000 simulated nodes (pxelab::sim, `bench/storm.rs`) power on
within 10 s and boot against pxelab running as its own process in a namespace (DHCP
server mode, TFTP, HTTP on that namespace's loopback; the SSH watcher on, each simulated
node serving SSH once booted, as a real node does). Measured: nodes
that fetched their NoCloud data, when the last one did (from the first power-on), pxelab's
peak RSS (VmHWM) and events/s through its engine (`--record` JSON lines / storm time),
once headless (`up --no-tui`) and once with the console attached (`up` in a pty)."""

import json
import os
import subprocess
import sys
import time

import lib

SIZES = [int(x) for x in os.environ.get("STORM_NODES", "100,500,1000").split(",")]
WINDOW = float(os.environ.get("STORM_WINDOW", "10"))
LIMIT = int(os.environ.get("STORM_LIMIT", "180"))
FACES = os.environ.get("STORM_FACES", "headless,tui").split(",")


def storm_bin():
    if os.environ.get("STORM_BIN"):
        return os.environ["STORM_BIN"]
    r = subprocess.run(["cargo", "build", "--release", "--quiet", "--example", "storm"],
                       cwd=lib.ROOT, env=dict(os.environ, CARGO_TARGET_DIR=lib.TARGET))
    if r.returncode != 0:
        raise RuntimeError("cargo build --release --example storm failed")
    return f"{lib.TARGET}/release/examples/storm"


def pxelab_pid(ns, launcher):
    """The pxelab process inside `ns` (under `script` for the console face)."""
    for _ in range(100):
        r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for pid in r.stdout.split():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip().startswith("pxelab"):
                        return int(pid)
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError("pxelab did not start")


def one(storm, n, face):
    d = lib.tmpdir(f"storm{n}")
    os.chmod(d, 0o755)
    subprocess.run([storm, "write-lab", d, str(n)], check=True)
    ns = lib.netns(f"storm")
    rec = f"{d}/events.jsonl"
    exe = lib.pxelab_bin()
    if face == "headless":
        argv = [exe, "-c", f"{d}/lab.yaml", "up", "--no-tui", "--record", rec]
    else:
        cmd = f"stty rows 50 cols 180; exec {exe} -c {d}/lab.yaml up --record {rec}"
        argv = ["script", "-qfec", cmd, "/dev/null"]
    launcher = lib.start(ns, argv, f"pxelab-{face}", cwd=d, out=f"{d}/pxelab.out",
                         env=dict(os.environ, TERM="xterm-256color"))
    pid = pxelab_pid(ns, launcher)
    lib.wait_port(ns, 18080, proc=launcher)
    lib.wait_port(ns, 10069, "udp", proc=launcher)
    time.sleep(0.3)
    t0 = time.time()
    r = subprocess.run(lib.in_ns(ns, [storm, "run", f"{d}/lab.yaml", str(n), str(WINDOW),
                                      str(LIMIT)]),
                       capture_output=True, text=True, timeout=LIMIT + 60)
    wall = time.time() - t0
    rss = lib.peak_rss_mb(pid)
    lib.stop(launcher)
    lib.drop_ns(ns)
    line = [x for x in r.stdout.splitlines() if x.startswith("{")]
    if not line:
        raise RuntimeError(f"storm printed nothing: {r.stdout[-2000:]}{r.stderr[-2000:]}")
    res = json.loads(line[-1])
    events, first, last = 0, None, None
    with open(rec) as f:
        for l in f:
            try:
                at = json.loads(l)["at_ms"]
            except (ValueError, KeyError):
                continue
            events += 1
            first = at if first is None else min(first, at)
            last = at if last is None else max(last, at)
    span = (last - first) / 1000.0 if first is not None and last > first else wall
    res.update({"face": face, "rss_mb": rss, "events": events,
                "events_per_s": events / span if span else None, "event_span_s": span})
    lib.log(f"storm {face} n={n}: served {res['served']}/{n}, last NoCloud "
            f"{res['last_nocloud_s']:.1f} s, RSS {rss:.1f} MB, {events} events "
            f"({res['events_per_s']:.0f}/s), failed: {failures(res['failed'])}")
    return res


def failures(failed):
    """'Step: reason' counts with MACs and ports folded, so equal causes group."""
    import re
    groups = {}
    for k, v in failed.items():
        k = re.sub(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", "MAC", k)
        k = re.sub(r"127\.[0-9.]+:[0-9]+", "ADDR", k)
        groups[k] = groups.get(k, 0) + v
    return "; ".join(f"{k} ×{v}" for k, v in groups.items()) or "none"


def main():
    storm = storm_bin()
    results = []
    for n in SIZES:
        for face in FACES:
            samples = []
            for i in range(max(1, lib.runs() if not lib.quick() else 1)):
                samples.append(one(storm, n, face))
            med = {k: lib.median([s[k] for s in samples])
                   for k in ("served", "last_nocloud_s", "median_nocloud_s", "rss_mb",
                             "events_per_s", "events")}
            med.update({"nodes": n, "face": face, "runs": len(samples),
                        "failed": samples[-1]["failed"], "samples": samples})
            results.append(med)
    lib.save_json("storm", results)
    rows = [[r["face"], r["nodes"], f"{r['served']:.0f}/{r['nodes']}",
             lib.fmt(r["last_nocloud_s"], 1), lib.fmt(r["median_nocloud_s"], 1),
             lib.fmt(r["rss_mb"], 1), lib.fmt(r["events_per_s"], 0), lib.fmt(r["events"], 0),
             failures(r["failed"])]
            for r in results]
    print(f"Boot storm: nodes power on evenly within {WINDOW:.0f} s, simulated at speed "
          f"{os.environ.get('STORM_SPEED', '1')}, median of {results[0]['runs'] if results else 0} "
          f"run(s); {lib.machine()}\n")
    print(lib.table(["face", "nodes", "served (NoCloud fetched)", "last NoCloud s",
                     "median NoCloud s", "pxelab peak RSS MB", "events/s", "events",
                     "failures"], rows))


if __name__ == "__main__":
    sys.exit(main())
