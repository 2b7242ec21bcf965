"""HTTP: 1 and 50 concurrent downloads of a 64 MiB initramfs from pxelab, nginx (sendfile)
and miniserve, in a server namespace reached over a switched LAN of veth links (MTU
1500) from client namespaces, each a machine of its own: 1 download is one wrk
connection from one machine, 50 are 5 machines with 10 connections each (a lab's nodes
are many machines, and pxelab, like nginx's limit_conn, caps connections per address).
Load: wrk (keep-alive, the body is read and discarded); MB/s = bytes wrk read / wall
time; CPU s/GB = server CPU (its cgroup, all its processes) / GB served. The order of
servers rotates each round."""

import hashlib
import json
import os
import subprocess
import sys
import time

import lib

SIZE_MIB = int(os.environ.get("HTTP_MIB", "64"))
CONCURRENCY = [1, 50]
# Client machines for the 50-download row (10 connections each).
MACHINES = 5
# The server's address on the LAN (set by main()).
SRV = {"ip": "127.0.0.1"}


def duration():
    return 3 if lib.quick() else 6


def nginx_server(ns, d, port):
    # Debian's nginx.conf as shipped: sendfile and tcp_nopush on, an access log line per
    # request (to a file, as /var/log/nginx/access.log), a worker per core.
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""
daemon off;
master_process on;
worker_processes auto;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {d}/nginx-access.log;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    client_body_temp_path {d}/t1;
    proxy_temp_path {d}/t2;
    fastcgi_temp_path {d}/t3;
    uwsgi_temp_path {d}/t4;
    scgi_temp_path {d}/t5;
    types {{ application/octet-stream bin; }}
    server {{
        listen {SRV['ip']}:{port};
        root {d}/assets;
        location /assets/ {{ alias {d}/assets/; }}
    }}
}}
""")
    p = lib.start(ns, ["nginx", "-c", conf, "-p", d], "nginx", out=f"{d}/nginx.out")
    lib.wait_port(ns, port, proc=p)
    return p, f"http://{SRV['ip']}:{port}/assets/initramfs"


def miniserve_server(ns, d, port):
    exe = lib.miniserve_bin()
    if not exe:
        return None, None
    p = lib.start(ns, [exe, "-i", SRV["ip"], "-p", str(port), "--route-prefix", "/assets",
                       f"{d}/assets"], "miniserve", out=f"{d}/miniserve.out")
    lib.wait_port(ns, port, proc=p)
    return p, f"http://{SRV['ip']}:{port}/assets/initramfs"


def pxelab_lab(d, http_port, admin_port, extra=""):
    return lib.write_lab(d, f"""name: bench
server_address: {SRV['ip']}
dhcp:
  mode: off
tftp:
  enabled: false
http:
  bind: {SRV['ip']}
  port: {http_port}
  admin_port: {admin_port}
boot:
  assets_dir: {d}/assets
  kernel: vmlinuz
  initrds: [initramfs]
  cmdline: "console=ttyS0"
ssh:
  watch: false
unknown: ignore
{extra}nodes: []
""")


PXELAB_PATHS = [p for p in os.environ.get(
    "PXELAB_ASSET_PATHS", "/assets/initramfs,/initramfs,/boot/initramfs").split(",") if p]


def pxelab_server(ns, d, port):
    exe = lib.pxelab_bin()
    lab = pxelab_lab(d, port, lib.free_port() + 1)
    p = lib.start(ns, [exe, "-c", lab, "up", "--no-tui"], "pxelab", cwd=d, out=f"{d}/pxelab.out")
    lib.wait_port(ns, port, proc=p)
    for path in PXELAB_PATHS:
        url = f"http://{SRV['ip']}:{port}{path}"
        r = subprocess.run(lib.in_ns(ns, ["curl", "-s", "-o", "/dev/null", "-r", "0-0",
                                          "-w", "%{http_code}", url]),
                           capture_output=True, text=True)
        if r.stdout.strip() in ("200", "206"):
            return p, url
    lib.log("pxelab serves the initramfs at none of " + ",".join(PXELAB_PATHS))
    lib.stop(p)
    return None, None


def verify(ns, url, want_sha):
    r = subprocess.run(lib.in_ns(ns, ["curl", "-sf", url]), capture_output=True)
    got = hashlib.sha256(r.stdout).hexdigest()
    if got != want_sha:
        raise RuntimeError(f"{url}: body differs from the file ({len(r.stdout)} bytes)")


def wrk(lan, url, conns, secs):
    """`conns` keep-alive downloads: one wrk (1 thread) per client machine, at most 10
    connections each, run at once; totals summed, duration the longest."""
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk_report.lua")
    machines = 1 if conns == 1 else MACHINES
    per = conns // machines
    procs = [subprocess.Popen(lib.in_ns(lan.clients[i], [
        "wrk", "-t", "1", "-c", str(per), "-d", f"{secs}s", "--timeout", "60s", "-s", script,
        url]), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(machines)]
    total = {"requests": 0, "bytes": 0, "duration_us": 0, "errors": 0}
    for p in procs:
        out, err = p.communicate(timeout=secs + 90)
        line = [x for x in out.splitlines() if x.startswith("{")]
        if not line:
            raise RuntimeError(f"wrk printed no report: {out}{err}")
        w = json.loads(line[-1])
        for k in ("requests", "bytes", "errors"):
            total[k] += w[k]
        total["duration_us"] = max(total["duration_us"], w["duration_us"])
    return total


def measure(lan, proc, url, conns, secs):
    t0 = time.time()
    with lib.CpuMeter(proc) as meter:
        w = wrk(lan, url, conns, secs)
    wall = time.time() - t0
    cpu = meter.seconds
    gb = w["bytes"] / 1e9
    secs_run = w["duration_us"] / 1e6 or wall
    return {"mbps": w["bytes"] / 1e6 / secs_run, "cpu_per_gb": cpu / gb if gb else None,
            "errors": w["errors"], "requests": w["requests"], "cpu": cpu, "bytes": w["bytes"]}


def main():
    lib.ensure_apt("wrk", "wrk")
    d = lib.tmpdir("http")
    os.chmod(d, 0o755)  # nginx workers run as an unprivileged user
    os.makedirs(f"{d}/assets")
    lib.make_file(f"{d}/assets/initramfs", SIZE_MIB)
    with open(f"{d}/assets/vmlinuz", "wb") as f:
        f.write(b"\0" * 4096)
    with open(f"{d}/assets/initramfs", "rb") as f:
        sha = hashlib.sha256(f.read()).hexdigest()
    ns = lib.netns("http")
    lan = lib.Lan("http", MACHINES)
    SRV["ip"] = lan.server(ns)
    servers = [("pxelab", pxelab_server), ("nginx", nginx_server), ("miniserve", miniserve_server)]
    only = os.environ.get("HTTP_SERVERS")
    if only:
        servers = [s for s in servers if s[0] in only.split(",")]
    # All servers run at once (idle when not measured); runs are interleaved
    # (run 1 of each, run 2 of each, ...) so load from elsewhere hits all alike.
    live, results = {}, {}
    for name, factory in servers:
        port = 18000 + len(results)
        try:
            proc, url = factory(ns, d, port)
        except Exception as e:  # a server that cannot start is reported, not fatal
            lib.log(f"{name}: cannot start: {e}")
            proc, url = None, None
        results[name] = None
        if proc is not None:
            verify(lan.clients[0], url, sha)
            live[name] = (proc, url)
            results[name] = {}
    for conns in CONCURRENCY:
        samples = {name: [] for name in live}
        for i in range(lib.runs()):
            for name in lib.rotated(list(live), i):
                proc, url = live[name]
                m = measure(lan, proc, url, conns, duration())
                lib.log(f"http {name} c={conns} run {i + 1}: {m['mbps']:.0f} MB/s, "
                        f"{m['cpu_per_gb'] or 0:.3f} CPU s/GB, {m['errors']} errors")
                samples[name].append(m)
        for name, ss in samples.items():
            results[name][conns] = {
                "mbps": lib.median([s["mbps"] for s in ss]),
                "cpu_per_gb": lib.median([s["cpu_per_gb"] for s in ss]),
                "errors": sum(s["errors"] for s in ss),
                "samples": ss,
            }
    for name, (proc, _) in live.items():
        results[name]["rss_mb"] = lib.peak_rss_mb(proc.pid)
        lib.stop(proc)
    lib.drop_ns(ns)
    lan.drop()
    lib.save_json("http", results)
    print(report(results))


def report(results):
    rows = []
    px = results.get("pxelab") or {}
    for conns in CONCURRENCY:
        for name in ("pxelab", "nginx", "miniserve"):
            if name not in results:
                continue
            r = results[name]
            if r is None:
                rows.append([name, conns, "not run", "", "", "", ""])
                continue
            m = r[conns]
            p = px.get(conns) if px else None
            rows.append([name, conns, lib.fmt(m["mbps"], 0), lib.fmt(m["cpu_per_gb"], 3),
                         lib.ratio(p["mbps"], m["mbps"]) if p and name != "pxelab" else "",
                         lib.ratio(p["cpu_per_gb"], m["cpu_per_gb"]) if p and name != "pxelab" else "",
                         m["errors"]])
    head = (f"HTTP over a veth LAN (MTU 1500), {SIZE_MIB} MiB file, "
            f"wrk {duration()} s per run, median of {lib.runs()} runs; "
            f"{lib.machine()}\n\n")
    return head + lib.table(["server", "concurrent", "MB/s", "CPU s/GB",
                             "pxelab MB/s ÷ this", "pxelab CPU ÷ this", "errors"], rows)


if __name__ == "__main__":
    sys.exit(main())
