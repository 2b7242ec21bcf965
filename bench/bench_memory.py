"""Memory at issue 16's bound: pxelab's RSS with 60,000 DHCP leases, 4,096 machines
lab.yaml does not list each at full history, and the SSH watcher on.

pxelab runs headless (`up --no-tui`, DHCP server mode, TFTP, HTTP, `ssh.watch: true`,
`unknown: hold`) in a namespace of its own, on that namespace's loopback. Two phases:

1. Leases: perfdhcp (Kea) binds distinct clients (DORA, `-R` far above the count so
   nearly every exchange is a new MAC) in bounded rounds until the lease file holds
   MEM_LEASES (60,000) bound leases; the range is a /15's worth of loopback addresses.
2. Unknown machines: `storm hold` (pxelab::sim) powers on MEM_UNKNOWN (4,096) machines
   lab.yaml does not list, each from an address of its own; each goes PXE ROM DHCP,
   TFTP, iPXE DHCP, then stays in the wait loop for MEM_ROUNDS boot-script fetches, past
   the engine's per-node timeline cap (the wait loop's `sleep` divided by STORM_SPEED).

VmRSS and VmHWM (/proc/PID/status) are sampled every 0.5 s; reported: RSS after start,
after the leases, the peak, and the RSS settled MEM_SETTLE s after the last machine
stopped. Then every unknown machine's record is read back over the admin API to check
its history is at the cap. With MEM_HEAPTRACK=1 pxelab runs under heaptrack and the
allocation sites holding the most at its heap's peak are printed (a separate run: heaptrack
slows it and adds its own memory). MEM_ARENA_MAX=n runs pxelab with glibc's
MALLOC_ARENA_MAX=n, as contrib/systemd/pxelab.service does (2). The peer row: dnsmasq taking MEM_LEASES leases from the same perfdhcp on a
veth pair between two namespaces (`--dhcp-lease-max` raised, `--no-ping` as in the DHCP
benchmark), its VmHWM. As users run it dnsmasq rewrites its whole lease file at every
change and logs every message: measured here at under 100 exchanges/s with 67 % drops
at 500/s, so 60,000 leases would take hours; the row runs it `--leasefile-ro
--quiet-dhcp` (labelled), which keeps the same lease table in memory.

Every loop is bounded in count (rounds) and time (`timeout`, MEM_LIMIT)."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import lib
from bench_storm import storm_bin

LEASES = int(os.environ.get("MEM_LEASES", "60000"))
UNKNOWN = int(os.environ.get("MEM_UNKNOWN", "4096"))
ROUNDS = int(os.environ.get("MEM_ROUNDS", "300"))
RATE = int(os.environ.get("MEM_DHCP_RATE", "2000"))
WINDOW = float(os.environ.get("MEM_WINDOW", "20"))
LIMIT = int(os.environ.get("MEM_LIMIT", "1500"))
SETTLE = float(os.environ.get("MEM_SETTLE", "15"))
SPEED = os.environ.get("MEM_SPEED", "4")
PEERS = [p for p in os.environ.get("MEM_PEERS", "dnsmasq").split(",") if p]
# glibc's MALLOC_ARENA_MAX for pxelab alone (contrib/systemd/pxelab.service sets 2); unset:
# as a shell runs it (glibc's default, 8 arenas per core).
ARENA_MAX = os.environ.get("MEM_ARENA_MAX", "")
# pxelab under heaptrack (slower; RSS then includes heaptrack's own): a heap breakdown.
HEAPTRACK = os.environ.get("MEM_HEAPTRACK", "0") not in ("", "0")
# At most this many perfdhcp rounds to reach the lease count.
LEASE_ROUNDS = 8


def caps():
    """The engine's per-node caps in this checkout's source (what "full" means)."""
    src = open(os.path.join(lib.ROOT, "src", "engine", "inventory.rs")).read()
    out = {}
    for name in ("TIMELINE_CAP", "UNKNOWN_TIMELINE_CAP", "LOG_CAP", "UNKNOWN_CAP"):
        m = re.search(rf"pub const {name}: usize = ([0-9_]+);", src)
        if m:
            out[name] = int(m.group(1).replace("_", ""))
    return out


class Sampler:
    """VmRSS/VmHWM of `pid` every 0.5 s, each sample tagged with the phase under way."""

    def __init__(self, pid):
        self.pid, self.phase, self.samples = pid, "start", []
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def status(self):
        out = {}
        try:
            with open(f"/proc/{self.pid}/status") as f:
                for line in f:
                    if line.startswith(("VmRSS:", "VmHWM:", "RssAnon:", "Threads:")):
                        k, v = line.split(":", 1)
                        out[k] = int(v.split()[0])
        except OSError:
            pass
        return out

    def _loop(self):
        while not self._stop.wait(0.5):
            s = self.status()
            if s:
                self.samples.append((time.time(), self.phase, s))

    def peak(self, phase=None):
        xs = [s["VmRSS"] for _, p, s in self.samples if phase is None or p == phase]
        return max(xs) / 1024.0 if xs else None

    def stop(self):
        self._stop.set()
        self._t.join()


def pxelab_pid(ns):
    """pxelab's own pid in `ns` (under heaptrack it is a child of heaptrack's script)."""
    for _ in range(200):
        r = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
        for p in r.stdout.split():
            try:
                with open(f"/proc/{p}/comm") as f:
                    if f.read().strip().startswith("pxelab"):
                        return int(p)
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError("pxelab did not start")


def mb(kb):
    return kb / 1024.0 if kb is not None else None


def pxelab_leases(state):
    """Bound leases on disk: the lease file, then its journal's lines above its `seq`
    (src/dhcp/journal.rs), each the final state of one MAC."""
    macs, seq = set(), 0
    try:
        with open(f"{state}/.pxelab/leases.json") as f:
            snap = json.load(f)
        seq = snap.get("seq", 0)
        macs = {l["mac"] for l in snap.get("leases", []) if l.get("bound", True)}
    except (OSError, ValueError):
        pass
    try:
        with open(f"{state}/.pxelab/leases.json.journal") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except ValueError:
                    break
                if rec.get("seq", 0) <= seq:
                    continue
                if "put" in rec:
                    macs.add(rec["put"]["mac"])
                elif "drop" in rec:
                    macs.discard(rec["drop"])
    except OSError:
        pass
    return len(macs)


ACKS = re.compile(r"Statistics for: REQUEST-ACK\*+\s*sent packets: \d+\s*received packets: (\d+)")


def perfdhcp_rounds(ns, argv, count, what):
    """perfdhcp rounds (DORA) until `count(acks)` reaches LEASES; at most LEASE_ROUNDS
    rounds, each bounded by its request count and time. perfdhcp numbers its clients'
    MACs from a base: each round starts from a base of its own, so every exchange is a
    new client (`acks`: the ACKs received so far, all to distinct MACs)."""
    acks = 0
    have = count(acks)
    for i in range(LEASE_ROUNDS):
        need = LEASES - have
        if need <= 0:
            break
        n = int(need * 1.02) + 10
        secs = n / RATE
        cmd = argv + ["-r", str(RATE), "-R", str(max(n, 2)), "-n", str(n), "-W", "2000000",
                      "-b", f"mac=00:0c:{0x10 + i:02x}:00:00:00", "-p", str(int(secs) + 10)]
        r = subprocess.run(lib.in_ns(ns, ["timeout", str(int(secs) + 60)] + cmd),
                           capture_output=True, text=True)
        m = ACKS.search(r.stdout)
        acks += int(m.group(1)) if m else 0
        time.sleep(1.5)  # the lease writer's next tick
        have = count(acks)
        lib.log(f"memory {what}: perfdhcp round {i + 1} ({n} exchanges at {RATE}/s): "
                f"{have} leases bound, {acks} ACKs so far (exit {r.returncode})")
    return have


def verify(ns, state, n):
    """Reads every unknown machine's record over the admin API (from inside the
    namespace): timeline lengths and log lines, and the inventory's text bytes."""
    token = open(f"{state}/.pxelab/admin-token").read().strip()
    script = r"""
import http.client, json, sys
token, n = sys.argv[1], int(sys.argv[2])
c = http.client.HTTPConnection("127.0.0.1", 17480, timeout=30)
lens, logs, text, missing = [], 0, 0, 0
for i in range(n):
    mac = "52:54:00:5e:%02x:%02x" % ((i >> 8) & 0xff, i & 0xff)
    c.request("GET", "/api/nodes/" + mac, headers={"Authorization": "Bearer " + token})
    r = c.getresponse()
    body = r.read()
    if r.status != 200:
        missing += 1
        continue
    rec = json.loads(body)
    tl = rec.get("timeline") or []
    lens.append(len(tl))
    logs += len(rec.get("log_tail") or [])
    text += sum(len(t.get("text", "")) + len(t.get("kind", "")) for t in tl)
print(json.dumps({"lens": lens, "logs": logs, "text_bytes": text, "missing": missing}))
"""
    r = subprocess.run(lib.in_ns(ns, ["timeout", "300", "python3", "-c", script, token, str(n)]),
                       capture_output=True, text=True)
    try:
        return json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        lib.log(f"memory: admin API check failed: {r.stdout[-500:]}{r.stderr[-1000:]}")
        return None


def demangled(frame):
    """A flame-graph frame without its hash and with Rust's symbol escapes undone."""
    frame = re.sub(r"::h[0-9a-f]{16}", "", frame)
    for a, b in (("$LT$", "<"), ("$GT$", ">"), ("$u20$", " "), ("$u7b$", "{"),
                 ("$u7d$", "}"), ("$RF$", "&"), ("$C$", ","), ("..", "::")):
        frame = frame.replace(a, b)
    return frame


def heaptrack_peaks(d):
    """With MEM_HEAPTRACK=1 pxelab ran under heaptrack: its heap at the peak, and that
    peak by the innermost pxelab function on each allocating stack (a flame graph of
    peak bytes, `heaptrack_print --flamegraph-cost-type peak`)."""
    files = sorted(f for f in os.listdir(d) if f.startswith("heaptrack.") and "flame" not in f)
    if not files:
        return None
    flame = f"{d}/flame.txt"
    r = subprocess.run(["timeout", "900", "heaptrack_print", "-f", f"{d}/{files[-1]}",
                        "--print-peaks", "0", "--print-allocators", "0",
                        "--print-temporary", "0", "--print-leaks", "0",
                        "--flamegraph-cost-type", "peak", "-F", flame],
                       capture_output=True, text=True)
    m = re.search(r"peak heap memory consumption: ([0-9.]+[KMG]?B?)", r.stdout)
    by = {}
    try:
        with open(flame) as f:
            for line in f:
                stack, _, cost = line.rstrip("\n").rpartition(" ")
                if not cost.isdigit():
                    continue
                frames = [demangled(x) for x in stack.split(";")]
                own = [x for x in frames if x.startswith("pxelab::")
                       or x.startswith("<pxelab::")]
                key = own[-1] if own else (frames[-1] if frames else "?")
                by[key] = by.get(key, 0) + int(cost)
    except OSError:
        lib.log(f"memory: heaptrack_print gave no flame graph: {r.stderr[-500:]}")
    top = sorted(by.items(), key=lambda kv: -kv[1])[:15]
    return {"peak_heap": m.group(1) if m else None,
            "by_function": [(k, v / 2**20) for k, v in top],
            "total_mb": sum(by.values()) / 2**20}


def lab_yaml(tftp):
    return f"""name: memory
server_address: 127.0.0.1
dhcp:
  mode: server
  subnet: 127.0.0.0/8
  range: [127.4.0.1, 127.5.255.250]
  lease_time: 12h
  port: 10067
  pxe_port: 14011
tftp:
  enabled: true
  root: {tftp}
  port: 10069
http:
  bind: 127.0.0.1
  port: 18080
  admin_port: 17480
boot:
  assets_dir: assets
  kernel: vmlinuz-lts
  initrds: [initramfs-lts]
  modloop: modloop-lts
  cmdline: "console=ttyS0 ip=dhcp modloop={{{{ modloop_url }}}}"
ssh:
  user: lab
  port: 10022
  watch: true
unknown: hold
nodes: []
"""


def run_pxelab(storm):
    d = lib.tmpdir("mem")
    os.chmod(d, 0o755)
    subprocess.run([storm, "write-lab", d, "0"], check=True)
    lab = lib.write_lab(d, lab_yaml(f"{d}/tftp"))
    ns = lib.netns("mem")
    # perfdhcp's own address (a relay agent's: giaddr; pxelab answers its source port).
    lib.sh("ip", "netns", "exec", ns, "ip", "addr", "add", "127.0.0.2/8", "dev", "lo")
    exe = lib.pxelab_bin()
    argv = [exe, "-c", lab, "up", "--no-tui"]
    if HEAPTRACK:
        argv = ["heaptrack", "-o", f"{d}/heaptrack.pxelab"] + argv
    env = dict(os.environ)
    if ARENA_MAX:
        env["MALLOC_ARENA_MAX"] = ARENA_MAX
    launcher = lib.start(ns, argv, "pxelab", cwd=d, env=env,
                         out=os.environ.get("PXB_PXELAB_LOG", "/dev/null"))
    pid = pxelab_pid(ns) if HEAPTRACK else launcher.pid
    lib.wait_port(ns, 18080, proc=launcher)
    lib.wait_port(ns, 10069, "udp", proc=launcher)
    lib.wait_port(ns, 10067, "udp", proc=launcher)
    time.sleep(2)
    smp = Sampler(pid)
    res = {"rss_start_mb": mb(smp.status().get("VmRSS"))}
    t0 = time.time()
    smp.phase = "leases"
    leases = perfdhcp_rounds(ns, ["perfdhcp", "-4", "-l", "127.0.0.2", "-L", "10068",
                                  "-N", "10067", "127.0.0.1"],
                             lambda _acks: pxelab_leases(d), "pxelab")
    res["leases_s"] = time.time() - t0
    time.sleep(3)
    st = smp.status()
    res.update({"leases": leases, "rss_after_leases_mb": mb(st.get("VmRSS")),
                "hwm_after_leases_mb": mb(st.get("VmHWM"))})
    smp.phase = "unknown"
    t1 = time.time()
    r = subprocess.run(lib.in_ns(ns, [storm, "hold", lab, str(UNKNOWN), str(ROUNDS),
                                      str(WINDOW), str(LIMIT)]),
                       capture_output=True, text=True, timeout=LIMIT + 120,
                       env=dict(os.environ, STORM_SPEED=SPEED))
    res["unknown_s"] = time.time() - t1
    line = [x for x in r.stdout.splitlines() if x.startswith("{")]
    if not line:
        raise RuntimeError(f"storm hold printed nothing: {r.stdout[-2000:]}{r.stderr[-2000:]}")
    res["hold"] = json.loads(line[-1])
    smp.phase = "settle"
    time.sleep(SETTLE)
    st = smp.status()
    smp.stop()
    res.update({"rss_settled_mb": mb(st.get("VmRSS")), "hwm_mb": mb(st.get("VmHWM")),
                "rss_anon_settled_mb": mb(st.get("RssAnon")), "threads": st.get("Threads"),
                "peak_sampled_mb": smp.peak(), "peak_leases_mb": smp.peak("leases"),
                "peak_unknown_mb": smp.peak("unknown"),
                "leases_end": pxelab_leases(d)})
    res["check"] = verify(ns, d, UNKNOWN)
    res["samples"] = [(round(t - t0, 1), p, s) for t, p, s in smp.samples]
    if HEAPTRACK:
        # pxelab alone is stopped; heaptrack's script ends once its data is written.
        os.kill(pid, signal.SIGTERM)
        try:
            launcher.wait(timeout=300)
        except subprocess.TimeoutExpired:
            pass
    lib.stop(launcher)
    if HEAPTRACK:
        res["heaptrack"] = heaptrack_peaks(d)
    lib.drop_ns(ns)
    return res


def run_dnsmasq():
    """dnsmasq (`--leasefile-ro --quiet-dhcp`, see the module doc) taking LEASES leases;
    its RSS."""
    d = lib.tmpdir("memd")
    sns, cns = lib.netns("memd-s"), lib.netns("memd-c")
    lib.veth_pair(sns, cns, "10.98.0.1/15", "10.98.0.2/15")
    argv = ["/usr/sbin/dnsmasq", "-k", "--conf-file=/dev/null", "--port=0", "--user=root",
            "--interface=srv0", "--bind-interfaces", f"--log-facility={d}/dnsmasq.log",
            f"--pid-file={d}/dnsmasq.pid", "--dhcp-range=10.98.1.0,10.99.255.250,12h",
            f"--dhcp-lease-max={LEASES * 2}", "--no-ping", "--dhcp-boot=undionly.kpxe",
            "--leasefile-ro", "--quiet-dhcp"]
    # No lease file to count: every ACK went to a MAC of its own (perfdhcp_rounds).
    p = lib.start(sns, argv, "dnsmasq")
    lib.wait_port(sns, 67, "udp", proc=p)
    time.sleep(1)
    rss0 = lib.peak_rss_mb(p.pid)
    t0 = time.time()
    leases = perfdhcp_rounds(cns, ["perfdhcp", "-4", "-l", "cli0"],
                             lambda acks: acks, "dnsmasq")
    secs = time.time() - t0
    time.sleep(3)
    with open(f"/proc/{p.pid}/status") as f:
        st = {l.split(":")[0]: int(l.split()[1]) for l in f
              if l.startswith(("VmRSS:", "VmHWM:"))}
    lib.stop(p)
    lib.drop_ns(cns)
    lib.drop_ns(sns)
    return {"leases": leases, "leases_s": secs, "rss_start_mb": rss0,
            "rss_settled_mb": mb(st.get("VmRSS")), "hwm_mb": mb(st.get("VmHWM"))}


def main():
    if not lib.have("perfdhcp"):
        lib.ensure_apt("perfdhcp", "kea-admin")
    storm = storm_bin()
    c = caps()
    res = {"caps": c, "leases_target": LEASES, "unknown": UNKNOWN, "rounds": ROUNDS,
           "malloc_arena_max": ARENA_MAX or None,
           "pxelab": run_pxelab(storm)}
    if "dnsmasq" in PEERS:
        res["dnsmasq"] = run_dnsmasq()
    lib.save_json("memory", res)
    print(report(res))


def report(res):
    px, c = res["pxelab"], res["caps"]
    cap = c.get("UNKNOWN_TIMELINE_CAP", c.get("TIMELINE_CAP"))
    chk = px.get("check") or {}
    lens = chk.get("lens") or []
    full = sum(1 for x in lens if cap and x >= cap)
    hold = px["hold"]
    out = [f"Memory at the bound: {px['leases']:,} leases (perfdhcp), {UNKNOWN:,} unknown "
           f"machines held for {ROUNDS} wait-loop rounds each (STORM_SPEED={SPEED}), SSH "
           f"watcher on, headless, MALLOC_ARENA_MAX={ARENA_MAX or 'unset'}; {lib.machine()}\n"]
    out.append(f"Unknown machines: {hold['held']:,} held, {hold['all_rounds']:,} went through "
               f"all {ROUNDS} rounds in {px['unknown_s']:.0f} s; failures: "
               f"{json.dumps(hold['failed'])}")
    if lens:
        out.append(f"Records read back: {len(lens):,} (missing {chk.get('missing')}), timeline "
                   f"length min {min(lens)} / max {max(lens)}, {full:,} at the cap ({cap}); "
                   f"{chk.get('logs', 0)} log lines; timeline text {chk.get('text_bytes', 0) / 2**20:.1f} MB\n")
    rows = [["pxelab", f"{px['leases']:,} + {UNKNOWN:,} unknown at full history",
             lib.fmt(px["rss_start_mb"]), lib.fmt(px["rss_after_leases_mb"]),
             lib.fmt(px["peak_sampled_mb"]), lib.fmt(px["hwm_mb"]),
             lib.fmt(px["rss_settled_mb"])]]
    dn = res.get("dnsmasq")
    if dn:
        rows.append(["dnsmasq --leasefile-ro --quiet-dhcp --no-ping", f"{dn['leases']:,} leases",
                     lib.fmt(dn["rss_start_mb"]), lib.fmt(dn["rss_settled_mb"]), "–",
                     lib.fmt(dn["hwm_mb"]), lib.fmt(dn["rss_settled_mb"])])
    out.append(lib.table(["server", "load", "RSS at start MB", "RSS after leases MB",
                          "peak sampled RSS MB", "VmHWM MB", "settled RSS MB"], rows))
    h = px.get("heaptrack")
    if h:
        out.append(f"\npxelab under heaptrack: peak heap {h['peak_heap']} "
                   f"({h['total_mb']:.1f} MB in the flame graph), by the innermost pxelab "
                   "function on the allocating stack:\n")
        out.append(lib.table(["function", "MB at the peak"],
                             [[f"`{k}`", f"{v:.1f}"] for k, v in h["by_function"]]))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
