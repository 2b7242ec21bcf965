"""TFTP: a 32 MiB file (16 MiB with QUICK=1) fetched by 1, 20 and 100 atftp clients at once from pxelab,
tftpd-hpa and dnsmasq, each server in a namespace of its own on port 69, reached from
client namespaces of their own (each client its own machine and address, as on a real
LAN) over a bridge of veth links with MTU 1500 (links, not a loopback).

Headline rows are what PXE ROMs and iPXE send: blksize 1468 (the most that fits a 1500
frame), no windowsize (window 1). Extra rows, labelled, follow: blksize 512 (no options)
and windowsize 16, an RFC 7440 option a client must ask for (EDK2 can; PXE ROMs and iPXE
do not). tftpd-hpa 5.2 and dnsmasq 2.90 ignore windowsize, so their windowsize-16 cells
run at 1. Peers run with their defaults, as users run them (dnsmasq logs every transfer;
its --tftp-max is raised from 50 to 100 only so the 100-client row is not refused).
Client: atftp (the only packaged client that sends windowsize). The order of the
servers rotates each round."""

import os
import subprocess
import sys
import time

import lib

SIZE_MIB = int(os.environ.get("TFTP_MIB", "16" if lib.quick() else "32"))
# (blksize, window, clients, headline?)
COMBOS = [(1468, 1, 1, True), (1468, 1, 20, True), (1468, 1, 100, True),
          (512, 1, 1, False), (512, 1, 20, False),
          (1468, 16, 1, False), (1468, 16, 20, False)]
PORT = 69
SINGLE_ROUNDS = 3
# Set per server by main(): the address its clients fetch from.
ADDR = {}


def tftpd_hpa(ns, d):
    # `-a 127.0.0.1:69` (and 0.0.0.0:69) make 5.2 exit 66 here; `:69` binds the
    # wildcard address, which in this namespace is its loopback only.
    # Debian's defaults (/etc/default/tftpd-hpa: --secure, standalone, user nobody here).
    p = lib.start(ns, ["/usr/sbin/in.tftpd", "-L", "-4", "-u", "nobody", "-s", "-a",
                       f":{PORT}", f"{d}/root"], "tftpd-hpa", out=f"{d}/tftpd.out")
    lib.wait_port(ns, PORT, "udp", proc=p)
    return p


def dnsmasq(ns, d):
    p = lib.start(ns, ["/usr/sbin/dnsmasq", "-k", "--conf-file=/dev/null", "--port=0",
                       "--user=nobody", "--pid-file=" + f"{d}/dnsmasq.pid",
                       f"--listen-address={ADDR['dnsmasq']}", "--bind-interfaces",
                       "--enable-tftp", f"--tftp-root={d}/root", "--tftp-max=100",
                       "--log-facility=-"],
                  "dnsmasq", out=f"{d}/dnsmasq.out")
    lib.wait_port(ns, PORT, "udp", proc=p)
    return p


def pxelab(ns, d):
    exe = lib.pxelab_bin()
    lab = lib.write_lab(d, f"""name: bench
server_address: {ADDR['pxelab']}
dhcp:
  mode: off
tftp:
  enabled: true
  root: {d}/root
  port: {PORT}
http:
  bind: {ADDR['pxelab']}
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


def fetch_argv(server, blk, win, dest):
    argv = ["atftp"]
    if blk != 512:
        argv += ["--option", f"blksize {blk}"]
    if win > 1:
        argv += ["--option", f"windowsize {win}"]
    return argv + ["-g", "-r", "file.bin", "-l", dest, ADDR[server], str(PORT)]


def run_fetches(lan, d, server, blk, win, conns):
    """`conns` fetches at once (a single fetch is repeated SINGLE_ROUNDS times back to
    back, so a sample lasts long enough to time); returns (wall s, fetches, failures)."""
    if conns == 1:
        wall, n, fails = 0.0, 0, 0
        for _ in range(SINGLE_ROUNDS):
            w, k, f = _fetch_at_once(lan, d, server, blk, win, 1)
            wall, n, fails = wall + w, n + k, fails + f
        return wall, n, fails
    return _fetch_at_once(lan, d, server, blk, win, conns)


def _fetch_at_once(lan, d, server, blk, win, conns):
    """`conns` fetches at once, each from a client namespace (machine) of its own."""
    procs = []
    t0 = time.time()
    for i in range(conns):
        dest = f"{d}/out/{i}"
        procs.append((subprocess.Popen(lib.in_ns(lan.clients[i], fetch_argv(server, blk, win, dest)),
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
    combos = COMBOS
    if os.environ.get("TFTP_HEADLINE_ONLY"):
        combos = [c for c in combos if c[3]]
    # Each server in a namespace of its own (all on port 69) on one switched LAN with
    # the clients, all running at once; runs are interleaved, and the order of servers
    # rotates each round, so load from elsewhere hits each alike.
    lan = lib.Lan("tftp", max(c[2] for c in combos))
    live, results = {}, {}
    for name, factory in servers:
        ns = lib.netns(f"tftp-{name}")
        ADDR[name] = lan.server(ns)
        try:
            live[name] = (ns, factory(ns, d))
            results[name] = {}
        except Exception as e:
            lib.log(f"{name}: cannot start: {e}")
            results[name] = None
    for blk, win, conns, _ in combos:
        samples = {name: [] for name in live}
        for i in range(lib.runs()):
            for name in lib.rotated(list(live), i):
                proc = live[name][1]
                with lib.CpuMeter(proc) as meter:
                    wall, n, fails = run_fetches(lan, d, name, blk, win, conns)
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
    lan.drop()
    lib.save_json("tftp", results)
    print(report(results, combos))


def report(results, combos):
    names = [n for n in ("pxelab", "tftpd-hpa", "dnsmasq") if n in results]
    headers = ["row", "fetches", "blksize", "window"]
    for n in names:
        headers += [f"{n} MB/s", f"{n} CPU s/GB"]
    headers += [f"pxelab ÷ {n}" for n in names if n != "pxelab"]
    headers += ["failed"]
    rows = []
    for blk, win, conns, headline in combos:
        key = f"{blk}/{win}/{conns}"
        label = "headline" if headline else ("extra: windowsize (client must ask)"
                                             if win > 1 else "extra: no options")
        row = [label, conns, blk, win]
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
    head = (f"TFTP over a switched LAN of veth links (MTU 1500), a machine per client, {SIZE_MIB} MiB file, atftp client, "
            f"median of {lib.runs()} runs; "
            f"{lib.machine()}\n\n")
    return head + lib.table(headers, rows)


if __name__ == "__main__":
    sys.exit(main())
