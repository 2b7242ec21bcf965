"""TFTP: 1 and 20 concurrent fetches of a 32 MiB file from pxelab, tftpd-hpa (in.tftpd -L)
and dnsmasq's TFTP, blksize 512 and 1468, windowsize 1 and 16, all on port 69 of a network
namespace's loopback, one server at a time. Client: atftp (the only packaged client that
sends RFC 7440 windowsize; tftp-hpa's client cannot set options, curl has blksize only).
tftpd-hpa 5.2 and dnsmasq 2.90 ignore windowsize, so their windowsize-16 cells run at 1."""

import os
import subprocess
import sys
import time

import lib

SIZE_MIB = int(os.environ.get("TFTP_MIB", "32"))
BLKSIZES = [512, 1468]
WINDOWS = [1, 16]
CONCURRENCY = [1, 20]
PORT = 69
SINGLE_ROUNDS = 3


def tftpd_hpa(ns, d):
    # `-a 127.0.0.1:69` (and 0.0.0.0:69) make 5.2 exit 66 here; `:69` binds the
    # wildcard address, which in this namespace is its loopback only.
    p = lib.start(ns, ["/usr/sbin/in.tftpd", "-L", "-4", "-u", "nobody", "-s", "-a",
                       f":{PORT}", f"{d}/root"], "tftpd-hpa", out=f"{d}/tftpd.out")
    lib.wait_port(ns, PORT, "udp", proc=p)
    return p


def dnsmasq(ns, d):
    p = lib.start(ns, ["/usr/sbin/dnsmasq", "-k", "--conf-file=/dev/null", "--port=0",
                       "--user=nobody", "--pid-file=" + f"{d}/dnsmasq.pid",
                       "--listen-address=127.0.0.1", "--bind-interfaces", "--enable-tftp",
                       f"--tftp-root={d}/root", "--tftp-max=100", "--log-facility=-"],
                  "dnsmasq", out=f"{d}/dnsmasq.out")
    lib.wait_port(ns, PORT, "udp", proc=p)
    return p


def pxelab(ns, d):
    exe = lib.pxelab_bin()
    lab = lib.write_lab(d, f"""name: bench
server_address: 127.0.0.1
dhcp:
  mode: off
tftp:
  enabled: true
  root: {d}/root
  port: {PORT}
http:
  bind: 127.0.0.1
  port: 18080
  admin_port: 18081
boot:
  assets_dir: {d}/root
  kernel: file.bin
  cmdline: "console=ttyS0"
ssh:
  watch: false
unknown: ignore
nodes: []
""")
    p = lib.start(ns, [exe, "-c", lab, "up", "--no-tui"], "pxelab", cwd=d, out=f"{d}/pxelab.out")
    lib.wait_port(ns, PORT, "udp", proc=p)
    return p


def fetch_argv(blk, win, dest):
    argv = ["atftp", "--option", f"blksize {blk}"]
    if win > 1:
        argv += ["--option", f"windowsize {win}"]
    return argv + ["-g", "-r", "file.bin", "-l", dest, "127.0.0.1", str(PORT)]


def run_fetches(ns, d, blk, win, conns):
    """`conns` fetches at once (a single fetch is repeated SINGLE_ROUNDS times back to
    back, so a sample lasts long enough to time); returns (wall s, fetches, failures)."""
    if conns == 1:
        wall, n, fails = 0.0, 0, 0
        for _ in range(SINGLE_ROUNDS):
            w, k, f = _fetch_at_once(ns, d, blk, win, 1)
            wall, n, fails = wall + w, n + k, fails + f
        return wall, n, fails
    return _fetch_at_once(ns, d, blk, win, conns)


def _fetch_at_once(ns, d, blk, win, conns):
    procs = []
    t0 = time.time()
    for i in range(conns):
        dest = f"{d}/out/{i}"
        procs.append((subprocess.Popen(lib.in_ns(ns, fetch_argv(blk, win, dest)),
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
                      dest))
    fails = 0
    limit = 300
    for p, dest in procs:
        try:
            rc = p.wait(timeout=max(1, limit - (time.time() - t0)))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = -1
        if rc != 0 or os.path.getsize(dest) != SIZE_MIB * 1024 * 1024:
            fails += 1
    wall = time.time() - t0
    for _, dest in procs:
        try:
            os.unlink(dest)
        except OSError:
            pass
    return wall, conns, fails


def main():
    lib.ensure_apt("atftp", "atftp")
    d = lib.tmpdir("tftp")
    os.chmod(d, 0o755)
    os.makedirs(f"{d}/root")
    os.makedirs(f"{d}/out")
    os.chmod(f"{d}/root", 0o755)
    lib.make_file(f"{d}/root/file.bin", SIZE_MIB)
    os.chmod(f"{d}/root/file.bin", 0o644)
    servers = [("pxelab", pxelab), ("tftpd-hpa", tftpd_hpa), ("dnsmasq", dnsmasq)]
    only = os.environ.get("TFTP_SERVERS")
    if only:
        servers = [s for s in servers if s[0] in only.split(",")]
    combos = [(b, w, c) for c in CONCURRENCY for b in BLKSIZES for w in WINDOWS]
    # Each server in a namespace of its own (all on port 69), all running at once;
    # runs are interleaved so load from elsewhere hits every server alike.
    live, results = {}, {}
    for name, factory in servers:
        ns = lib.netns(f"tftp-{name}")
        try:
            live[name] = (ns, factory(ns, d))
            results[name] = {}
        except Exception as e:
            lib.log(f"{name}: cannot start: {e}")
            results[name] = None
    for blk, win, conns in combos:
        samples = {name: [] for name in live}
        for i in range(lib.runs()):
            for name, (ns, proc) in live.items():
                with lib.CpuMeter(proc) as meter:
                    wall, n, fails = run_fetches(ns, d, blk, win, conns)
                cpu = meter.seconds
                ok = n - fails
                mb = ok * SIZE_MIB * 1.048576
                s = {"mbps": mb / wall, "cpu_per_gb": cpu / (mb / 1000) if ok else None,
                     "fails": fails, "wall": wall}
                lib.log(f"tftp {name} blksize={blk} window={win} x{conns} run {i + 1}: "
                        f"{s['mbps']:.1f} MB/s, {s['cpu_per_gb'] or 0:.2f} CPU s/GB, "
                        f"{fails} failed, {wall:.2f} s")
                samples[name].append(s)
        for name, ss in samples.items():
            results[name][f"{blk}/{win}/{conns}"] = {
                "mbps": lib.median([s["mbps"] for s in ss]),
                "cpu_per_gb": lib.median([s["cpu_per_gb"] for s in ss]),
                "fails": sum(s["fails"] for s in ss), "samples": ss}
    for name, (ns, proc) in live.items():
        lib.stop(proc)
        lib.drop_ns(ns)
    lib.save_json("tftp", results)
    print(report(results, combos))


def report(results, combos):
    names = [n for n in ("pxelab", "tftpd-hpa", "dnsmasq") if n in results]
    headers = ["fetches", "blksize", "window"]
    for n in names:
        headers += [f"{n} MB/s", f"{n} CPU s/GB"]
    headers += [f"pxelab ÷ {n}" for n in names if n != "pxelab"]
    headers += ["failed"]
    rows = []
    for blk, win, conns in combos:
        key = f"{blk}/{win}/{conns}"
        row = [conns, blk, win]
        fails = 0
        for n in names:
            m = (results[n] or {}).get(key)
            row += [lib.fmt(m["mbps"]) if m else "–", lib.fmt(m["cpu_per_gb"], 2) if m else "–"]
            fails += m["fails"] if m else 0
        px = (results.get("pxelab") or {}).get(key)
        for n in names:
            if n == "pxelab":
                continue
            m = (results[n] or {}).get(key)
            row.append(lib.ratio(px["mbps"], m["mbps"]) if px and m else "–")
        row.append(fails)
        rows.append(row)
    head = (f"TFTP, {SIZE_MIB} MiB file, atftp client, median of {lib.runs()} runs; "
            f"{lib.machine()}\n\n")
    return head + lib.table(headers, rows)


if __name__ == "__main__":
    sys.exit(main())
