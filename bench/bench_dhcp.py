"""DHCP: perfdhcp (Kea) against pxelab and dnsmasq at rising rates, server mode (full DORA)
and proxy mode (DISCOVER-OFFER only, PXE client options). Two namespaces joined by a veth
pair: the server in one, perfdhcp in the other; perfdhcp acts as a relay (giaddr set,
replies unicast to it). Each server is restarted fresh for every step so leases from
the previous step do not carry over. Reported per server: the highest rate whose median
drop ratio is < 1 %, and p50/p99 of the request->reply delay at that rate (from
perfdhcp -x t timestamps of every successful exchange)."""

import os
import re
import subprocess
import sys

import lib

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


def perfdhcp(ns, rate, mode):
    argv = ["perfdhcp", "-4", "-l", "cli0", "-r", str(rate), "-p", str(period()),
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


def bench_mode(mode, servers, d):
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
                with lib.CpuMeter(proc) as meter:
                    m = perfdhcp(cns, rate, mode)
                lib.stop(proc)
                m["cpu"] = meter.seconds
                lib.log(f"dhcp {mode} {name} rate={rate} run {i + 1}: sent {m['offered']:.0f}/s, "
                        f"completed {m['rate']:.0f}/s, "
                        f"drops {m['drops']:.2f} %, p50 {m['p50'] or 0:.3f} ms, "
                        f"p99 {m['p99'] or 0:.3f} ms, server CPU {m['cpu']:.2f} s")
                samples.append(m)
        for name, samples in per.items():
            if not samples:
                continue
            st = {k: lib.median([s[k] for s in samples])
                  for k in ("offered", "rate", "drops", "p50", "p99", "cpu")}
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
    modes = os.environ.get("DHCP_MODES", "server,proxy").split(",")
    only = os.environ.get("DHCP_SERVERS")
    results = {}
    for mode in modes:
        if mode == "server":
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
        results[mode] = bench_mode(mode, servers, d)
    lib.save_json("dhcp", {m: {n: {str(r): s for r, s in st.items()} for n, st in v.items()}
                           for m, v in results.items()})
    print(report(results))


def report(results):
    out = [f"DHCP, perfdhcp -R {CLIENTS} clients, {period()} s per step, median of "
           f"{lib.runs()} runs per step; {lib.machine()}\n"]
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
                         lib.fmt(s["cpu"] / (s["rate"] * period()) * 1e6, 1) if s and s["rate"] else "–",
                         lib.ratio(px_rate, rate) if name != "pxelab" and px_rate and rate else ""])
        out.append(f"\n{mode}: {what}\n")
        out.append(lib.table(["server", "highest rate < 1 % drops (/s)", "p50 ms", "p99 ms",
                              "server CPU µs/exchange", "pxelab ÷ this"], rows))
        # the full ladder, so the knee is visible
        rates = sorted({r for st in steps.values() for r in st})
        ladder = []
        for r in rates:
            row = [r]
            for name, st in steps.items():
                s = st.get(r)
                row.append(f"{s['rate']:.0f}/s, {s['drops']:.1f} %, p99 {lib.fmt(s['p99'], 2)} ms" if s else "–")
            ladder.append(row)
        out.append("\n")
        out.append(lib.table(["offered rate"] + list(steps), ladder))
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
