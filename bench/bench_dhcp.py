"""DHCP: perfdhcp (Kea) against pxelab and dnsmasq at rising rates, server mode (full DORA)
and proxy mode (DISCOVER-OFFER only, PXE client options). Two namespaces joined by a veth
pair: the server in one, perfdhcp in the other; perfdhcp acts as a relay (giaddr set,
replies unicast to it). Each server is restarted fresh for every step so leases from
the previous step do not carry over. Reported per server: the highest rate whose median
drop ratio is < 1 %, and p50/p99 of the request->reply delay at that rate (from
perfdhcp -x t timestamps of every successful exchange).

Mode `avalanche` (issue 16): a storm of DHCP_CLIENTS (1,000) new clients at once
(`perfdhcp --scenario avalanche`: every client's DISCOVER sent at once, then each one
retransmits with back-off until its DORA completes), each server in server mode, as
users run it. Reported: the time until all are bound, perfdhcp's retransmissions, and
the UDP receive-buffer drops of the server's namespace (/proc/net/snmp `Udp:
RcvbufErrors` before/after): a retransmission with zero RcvbufErrors was not caused by
the kernel dropping on the server's side. perfdhcp's own namespace is counted too: it
plays 1,000 clients on one socket whose default queue overflows when a server answers
fast (1,000 real clients have a queue each); DHCP_DEEP_CLIENT=1 gives it a deep one."""

import os
import re
import subprocess
import sys

import lib
import wire

CLIENTS = int(os.environ.get("DHCP_CLIENTS", "1000"))
RATES = [int(r) for r in os.environ.get(
    "DHCP_RATES", "1000,2000,5000,10000,15000,20000,25000,30000,40000").split(",")]
SRV, CLI = "10.99.0.1", "10.99.0.2"
RANGE = ("10.99.1.0", "10.99.255.250")
PXE_OPTS = ["-o", "60," + b"PXEClient:Arch:00000:UNDI:002001".hex(),
            "-o", "93,0000", "-o", "94,010201",
            "-o", "97,00" + "11223344556677889900aabbccddeeff"]


def period():
    return 3 if lib.quick() else 5


def dnsmasq_server(mode, tuned):
    """dnsmasq as users run it (its lease file, a log line per DHCP message), or
    `tuned`: `--leasefile-ro --quiet-dhcp`, labelled, which nobody runs in a lab."""
    def start(ns, d):
        argv = ["/usr/sbin/dnsmasq", "-k", "--conf-file=/dev/null", "--port=0", "--user=root",
                "--interface=srv0", "--bind-interfaces", f"--log-facility={d}/dnsmasq.log",
                f"--pid-file={d}/dnsmasq.pid"]
        if mode == "server":
            argv += [f"--dhcp-range={RANGE[0]},{RANGE[1]},12h", "--dhcp-lease-max=200000",
                     "--no-ping", "--dhcp-boot=undionly.kpxe"]
            lf = f"{d}/dnsmasq.leases"
            if os.path.exists(lf):
                os.unlink(lf)
            argv.append(f"--dhcp-leasefile={lf}")
        else:
            argv += ["--dhcp-range=10.99.0.0,proxy", "--pxe-service=x86PC,boot,undionly"]
        if tuned:
            argv += ["--leasefile-ro", "--quiet-dhcp"]
        p = lib.start(ns, argv, "dnsmasq")
        lib.wait_port(ns, 67, "udp", proc=p)
        return p
    return start


def pxelab_server(mode):
    def start(ns, d):
        exe = lib.pxelab_bin()
        state = f"{d}/pxelab-{mode}"
        if os.path.exists(state):
            subprocess.run(["rm", "-rf", state])
        os.makedirs(f"{state}/assets")
        with open(f"{state}/assets/vmlinuz", "wb") as f:
            f.write(b"\0" * 4096)
        if mode == "server":
            dhcp = f"""dhcp:
  mode: server
  subnet: 10.99.0.0/16
  range: [{RANGE[0]}, {RANGE[1]}]
  lease_time: 12h
"""
        else:
            # perfdhcp is a relay agent (giaddr): proxy mode answers listed relays only.
            dhcp = f"dhcp:\n  mode: proxy\n  relays: [{CLI}]\n"
        lab = lib.write_lab(state, f"""name: bench
interface: srv0
server_address: {SRV}
{dhcp}tftp:
  enabled: false
http:
  bind: 127.0.0.1
  port: 18080
  admin_port: 18081
boot:
  assets_dir: assets
  kernel: vmlinuz
  cmdline: "console=ttyS0"
ssh:
  watch: false
unknown: hold
nodes: []
""")
        p = lib.start(ns, [exe, "-c", lab, "up", "--no-tui"], "pxelab", cwd=state,
                      out=os.environ.get("PXB_PXELAB_LOG", "/dev/null"))
        # proxy mode listens on :67 with a raw socket (shared with the LAN's server),
        # which `ss -lun` does not list; its :4011 socket is a plain one.
        lib.wait_port(ns, 67 if mode == "server" else 4011, "udp", proc=p)
        return p
    return start


TS = re.compile(r"sent / received: (\d+\.\d+) / (\d+\.\d+)")


def perfdhcp(ns, rate, mode, shim=None):
    argv = (["env", f"LD_PRELOAD={shim}"] if shim else []) + ["perfdhcp", "-4", "-l", "cli0", "-r", str(rate), "-p", str(period()),
            "-R", str(CLIENTS), "-x", "t", "-W", "500000"]
    if mode == "proxy":
        argv += ["-i"] + PXE_OPTS
    r = subprocess.run(lib.in_ns(ns, argv), capture_output=True, text=True,
                       timeout=period() + 60)
    out = r.stdout
    sent = [int(x) for x in re.findall(r"sent packets: (\d+)", out)]
    recv = [int(x) for x in re.findall(r"received packets: (\d+)", out)]
    delays, section = {"DO": [], "RA": []}, None
    for line in out.splitlines():
        if line.startswith("***Timestamps for packets: DISCOVER-OFFER"):
            section = "DO"
        elif line.startswith("***Timestamps for packets: REQUEST-ACK"):
            section = "RA"
        elif section:
            m = TS.search(line)
            if m:
                delays[section].append((float(m.group(2)) - float(m.group(1))) * 1000.0)
    # Drops: every request sent that got no reply (DISCOVERs, and REQUESTs in server mode).
    total_sent = sum(sent)
    drops = (total_sent - sum(recv)) / total_sent if total_sent else 1.0
    all_d = delays["DO"] + delays["RA"]
    # perfdhcp's own "Rate:" divides by the run plus the exit wait: use counts instead.
    offered = sent[0] / period() if sent else 0.0
    done = recv[-1] / period() if recv else 0.0
    return {"offered": offered, "rate": done, "drops": drops * 100,
            "p50": lib.percentile(all_d, 50), "p99": lib.percentile(all_d, 99),
            "sent": total_sent}


def softnet_drops():
    """Packets the kernel dropped from its per-CPU input backlogs (whole machine:
    /proc/net/softnet_stat, second column, hex)."""
    with open("/proc/net/softnet_stat") as f:
        return sum(int(line.split()[1], 16) for line in f if line.strip())


def udp_snmp(ns):
    """`Udp:` counters of namespace `ns` (/proc/net/snmp is per namespace)."""
    r = subprocess.run(lib.in_ns(ns, ["cat", "/proc/net/snmp"]), capture_output=True,
                       text=True, check=True)
    rows = [line.split()[1:] for line in r.stdout.splitlines() if line.startswith("Udp:")]
    return dict(zip(rows[0], (int(x) for x in rows[1])))


AV_TOOK = re.compile(r"It took (\d+):(\d+):(\d+(?:\.\d+)?) to provision")
AV_RETX = re.compile(r"Requests resent: (\d+)")


def avalanche(ns, sns):
    """One storm of CLIENTS new clients (perfdhcp --scenario avalanche, full DORA)."""
    argv = ["perfdhcp", "-4", "-l", "cli0", "-R", str(CLIENTS), "--scenario", "avalanche",
            "-W", "500000"]
    shim = deep_client_queue()
    if shim:
        argv = ["env", f"LD_PRELOAD={shim}"] + argv
    before, cbefore, sbefore = udp_snmp(sns), udp_snmp(ns), softnet_drops()
    r = subprocess.run(lib.in_ns(ns, argv), capture_output=True, text=True, timeout=120)
    after, cafter, safter = udp_snmp(sns), udp_snmp(ns), softnet_drops()
    out = r.stdout + r.stderr
    m = AV_TOOK.search(out)
    took = ((int(m.group(1)) * 60 + int(m.group(2))) * 60 + float(m.group(3))) * 1000 if m else None
    m = AV_RETX.search(out)
    retx = int(m.group(1)) if m else None
    recv = [int(x) for x in re.findall(r"received packets: (\d+)", out)]
    return {"ms": took, "retransmissions": retx, "acks": recv[-1] if recv else 0,
            "rcvbuf_errors": after.get("RcvbufErrors", 0) - before.get("RcvbufErrors", 0),
            "in_errors": after.get("InErrors", 0) - before.get("InErrors", 0),
            # Where the other losses happen: perfdhcp's own socket, and the per-CPU
            # backlog every veth packet passes (net.core.netdev_max_backlog).
            "client_rcvbuf_errors": cafter.get("RcvbufErrors", 0) - cbefore.get("RcvbufErrors", 0),
            "backlog_drops": safter - sbefore,
            "raw": out}


def pxelab_dropped(ns, d):
    """pxelab's own count of DHCP packets it dropped (the engine's `dhcp_dropped`, from
    the admin API's /api/state), or None when it cannot be read."""
    try:
        with open(f"{d}/pxelab-server/.pxelab/admin-token") as f:
            token = f.read().strip()
        r = subprocess.run(lib.in_ns(ns, ["curl", "-sf", "-H", f"Authorization: Bearer {token}",
                                          "http://127.0.0.1:18081/api/state"]),
                           capture_output=True, text=True, timeout=10)
        import json
        return json.loads(r.stdout)["snapshot"]["dhcp_dropped"]
    except (OSError, ValueError, KeyError, subprocess.SubprocessError):
        return None


SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <sys/socket.h>
int socket(int domain, int type, int protocol) {
    static int (*real)(int, int, int);
    if (!real) real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    int fd = real(domain, type, protocol);
    if (fd >= 0 && (type & 0xff) == SOCK_DGRAM) {
        int size = 4 << 20;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    }
    return fd;
}
"""


def deep_client_queue():
    """With DHCP_DEEP_CLIENT=1: an LD_PRELOAD shim (built here with cc) giving perfdhcp's
    sockets a 4 MiB receive queue. perfdhcp plays 1,000 clients on one socket with the
    default 208 KiB queue, which overflows when a server answers a storm faster than
    perfdhcp reads (each loss a retransmission perfdhcp caused itself); 1,000 real
    clients have a queue each. Applies to every server alike; the load generator only."""
    if os.environ.get("DHCP_DEEP_CLIENT") != "1":
        return None
    d = lib.tmpdir("shim")
    with open(f"{d}/deepq.c", "w") as f:
        f.write(SHIM)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", f"{d}/deepq.so", f"{d}/deepq.c",
                    "-ldl"], check=True)
    return f"{d}/deepq.so"


def bench_avalanche(servers, d):
    sns = lib.netns("dhcp-s")
    cns = lib.netns("dhcp-c")
    lib.veth_pair(sns, cns, f"{SRV}/16", f"{CLI}/16")
    per = {name: [] for name in servers}
    for i in range(lib.runs()):
        for name in lib.rotated(list(servers), i):
            try:
                proc = servers[name](sns, d)
            except Exception as e:
                lib.log(f"dhcp avalanche {name}: cannot start: {e}")
                continue
            with lib.CpuMeter(proc) as meter:
                m = avalanche(cns, sns)
            m["app_dropped"] = pxelab_dropped(sns, d) if name == "pxelab" else None
            lib.stop(proc)
            m["cpu"] = meter.seconds
            if os.environ.get("PXB_AVALANCHE_RAW"):
                lib.log(m["raw"])
            del m["raw"]
            lib.log(f"dhcp avalanche {name} run {i + 1}: {m['acks']} bound in {m['ms']} ms, "
                    f"{m['retransmissions']} retransmissions, RcvbufErrors "
                    f"{m['rcvbuf_errors']}, InErrors {m['in_errors']}, own drop counter "
                    f"{m['app_dropped']}, perfdhcp-side RcvbufErrors {m['client_rcvbuf_errors']}, "
                    f"backlog drops {m['backlog_drops']}, "
                    f"server CPU {m['cpu']:.3f} s")
            per[name].append(m)
    lib.drop_ns(cns)
    lib.drop_ns(sns)
    return {name: {"median": {k: lib.median([s[k] for s in ss])
                              for k in ("ms", "retransmissions", "acks", "rcvbuf_errors",
                                        "in_errors", "app_dropped", "client_rcvbuf_errors",
                                        "backlog_drops", "cpu")},
                   "samples": ss}
            for name, ss in per.items() if ss}


def bench_mode(mode, servers, d):
    shim = deep_client_queue()
    sns = lib.netns("dhcp-s")
    cns = lib.netns("dhcp-c")
    lib.veth_pair(sns, cns, f"{SRV}/16", f"{CLI}/16")
    steps = {name: {} for name in servers}
    failing = {name: 0 for name in servers}
    for rate in RATES:
        active = [n for n in servers if failing[n] < 2]
        if not active:
            break
        per = {name: [] for name in active}
        # Runs interleaved, the order of servers rotating each round.
        for i in range(lib.runs()):
            for name in lib.rotated(active, i):
                if failing[name] >= 99:
                    continue
                samples = per[name]
                try:
                    proc = servers[name](sns, d)
                except Exception as e:
                    lib.log(f"dhcp {mode} {name}: cannot start: {e}")
                    failing[name] = 99
                    continue
                before = (udp_snmp(sns), udp_snmp(cns))
                with lib.CpuMeter(proc) as meter, \
                        wire.Capture(sns, f"{d}/wire-{mode}-{rate}-{i}.pcap") as cap:
                    m = perfdhcp(cns, rate, mode, shim)
                lib.stop(proc)
                after = (udp_snmp(sns), udp_snmp(cns))
                m["cpu"] = meter.seconds
                wire_d = cap.delays_ms()
                m["wire_p50"] = lib.percentile(wire_d, 50)
                m["wire_p99"] = lib.percentile(wire_d, 99)
                m["capture_drops"] = cap.kernel_drops
                m["server_rcvbuf"], m["client_rcvbuf"] = (
                    a["RcvbufErrors"] - b["RcvbufErrors"] for a, b in zip(after, before))
                lib.log(f"dhcp {mode} {name} rate={rate} run {i + 1}: sent {m['offered']:.0f}/s, "
                        f"completed {m['rate']:.0f}/s, "
                        f"drops {m['drops']:.2f} %, p50 {m['p50'] or 0:.3f} ms, "
                        f"p99 {m['p99'] or 0:.3f} ms, at the server's wire p50 "
                        f"{m['wire_p50'] or 0:.3f} / p99 {m['wire_p99'] or 0:.3f} ms, "
                        f"RcvbufErrors server {m['server_rcvbuf']} perfdhcp {m['client_rcvbuf']}, "
                        f"capture drops {m['capture_drops']}, server CPU {m['cpu']:.2f} s")
                samples.append(m)
        for name, samples in per.items():
            if not samples:
                continue
            st = {k: lib.median([s[k] for s in samples])
                  for k in ("offered", "rate", "drops", "p50", "p99", "cpu", "wire_p50",
                            "wire_p99", "server_rcvbuf", "client_rcvbuf")}
            st["samples"] = samples
            steps[name][rate] = st
            ok = st["drops"] < 1.0 and st["offered"] >= 0.97 * rate
            failing[name] = 0 if ok else failing[name] + 1
    lib.drop_ns(cns)
    lib.drop_ns(sns)
    return steps


def best(steps):
    """The highest rate step with < 1 % median drops that perfdhcp actually sustained."""
    good = [(r, s) for r, s in steps.items() if s["drops"] < 1.0 and s["offered"] >= 0.97 * r]
    return max(good, key=lambda x: x[0]) if good else (None, None)


def main():
    if not lib.have("perfdhcp"):
        lib.ensure_apt("perfdhcp", "kea-admin")
    d = lib.tmpdir("dhcp")
    modes = os.environ.get("DHCP_MODES", "server,proxy,avalanche").split(",")
    only = os.environ.get("DHCP_SERVERS")
    results, storms = {}, {}
    for mode in modes:
        if mode in ("server", "avalanche"):
            servers = {"pxelab": pxelab_server("server"),
                       "dnsmasq": dnsmasq_server("server", tuned=False),
                       "dnsmasq tuned (--leasefile-ro --quiet-dhcp)":
                           dnsmasq_server("server", tuned=True)}
        else:
            servers = {"pxelab": pxelab_server("proxy"),
                       "dnsmasq": dnsmasq_server("proxy", tuned=False),
                       "dnsmasq tuned (--quiet-dhcp)": dnsmasq_server("proxy", tuned=True)}
        if only:
            servers = {k: v for k, v in servers.items() if k.split()[0] in only.split(",")}
        if mode == "avalanche":
            storms = bench_avalanche(servers, d)
            continue
        results[mode] = bench_mode(mode, servers, d)
    lib.save_json("dhcp", {m: {n: {str(r): s for r, s in st.items()} for n, st in v.items()}
                           for m, v in results.items()} | {"avalanche": storms})
    print(report(results))
    if storms:
        print(report_avalanche(storms))


def report_avalanche(storms):
    rows = []
    px = storms.get("pxelab", {}).get("median", {}).get("ms")
    for name, st in storms.items():
        m = st["median"]
        rows.append([name, lib.fmt(m["ms"], 0), lib.fmt(m["acks"], 0),
                     lib.fmt(m["retransmissions"], 0), lib.fmt(m["rcvbuf_errors"], 0),
                     lib.fmt(m["app_dropped"], 0), lib.fmt(m["client_rcvbuf_errors"], 0),
                     lib.fmt(m["backlog_drops"], 0),
                     lib.fmt(m["cpu"] * 1000, 0) if m["cpu"] is not None else "–",
                     lib.ratio(px, m["ms"]) if name != "pxelab" and px and m["ms"] else ""])
    return (f"\navalanche: {CLIENTS} new clients at once (perfdhcp --scenario avalanche, "
            f"full DORA), median of {lib.runs()} runs, order rotating per round; perfdhcp's "
            + ("socket given a 4 MiB queue (DHCP_DEEP_CLIENT=1)" if os.environ.get(
                "DHCP_DEEP_CLIENT") == "1" else "default socket queue (208 KiB)")
            + "\n\n"
            + lib.table(["server", "time to bind all (ms)", "bound", "retransmissions",
                         "server-side UDP RcvbufErrors", "server's own drop count",
                         "perfdhcp-side RcvbufErrors", "kernel backlog drops",
                         "server CPU ms",
                         "pxelab ÷ this (time)"], rows))


def report(results):
    out = [f"DHCP, perfdhcp -R {CLIENTS} clients, {period()} s per step, median of "
           f"{lib.runs()} runs per step; perfdhcp's "
           + ("socket given a 4 MiB queue (DHCP_DEEP_CLIENT=1)" if os.environ.get(
               "DHCP_DEEP_CLIENT") == "1" else "default socket queue (208 KiB)")
           + f"; {lib.machine()}\n"
           "Delays: perfdhcp's own (-x t, stamped in its user space: includes time a reply "
           "waits in perfdhcp's socket) and the server's wire (tcpdump in the server's "
           "namespace: request in -> reply out). Ladder: rate, drops, p99 perfdhcp / wire, "
           "UDP RcvbufErrors server / perfdhcp.\n"]
    for mode, steps in results.items():
        what = ("server mode, full DORA (exchanges/s = DISCOVER-OFFER-REQUEST-ACK)"
                if mode == "server" else
                "proxy mode, DISCOVER-OFFER only (perfdhcp -i, option 60 PXEClient, 93, 94, 97)")
        rows = []
        px_rate = best(steps.get("pxelab", {}))[0]
        for name, st in steps.items():
            rate, s = best(st)
            rows.append([name, lib.fmt(rate, 0) if rate else "none", lib.fmt(s["p50"], 3) if s else "–",
                         lib.fmt(s["p99"], 3) if s else "–",
                         lib.fmt(s["wire_p50"], 3) if s else "–",
                         lib.fmt(s["wire_p99"], 3) if s else "–",
                         lib.fmt(s["cpu"] / (s["rate"] * period()) * 1e6, 1) if s and s["rate"] else "–",
                         lib.ratio(px_rate, rate) if name != "pxelab" and px_rate and rate else ""])
        out.append(f"\n{mode}: {what}\n")
        out.append(lib.table(["server", "highest rate < 1 % drops (/s)", "p50 ms (perfdhcp)",
                              "p99 ms (perfdhcp)", "p50 ms (server's wire)",
                              "p99 ms (server's wire)", "server CPU µs/exchange",
                              "pxelab ÷ this"], rows))
        # the full ladder, so the knee is visible
        rates = sorted({r for st in steps.values() for r in st})
        ladder = []
        for r in rates:
            row = [r]
            for name, st in steps.items():
                s = st.get(r)
                row.append(f"{s['rate']:.0f}/s, {s['drops']:.1f} %, p99 {lib.fmt(s['p99'], 2)} / "
                           f"{lib.fmt(s['wire_p99'], 2)} ms, RcvbufErrors {lib.fmt(s['server_rcvbuf'], 0)} / "
                           f"{lib.fmt(s['client_rcvbuf'], 0)}" if s else "–")
            ladder.append(row)
        out.append("\n")
        out.append(lib.table(["offered rate"] + list(steps), ladder))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
