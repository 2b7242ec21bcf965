"""Shared helpers of the pxelab benchmarks: namespaces, servers, CPU accounting, tables.

Every server and load generator runs inside a network namespace this module creates
(`pxb-*`), on that namespace's own loopback or on a veth pair between two such
namespaces. Nothing is sent on the machine's real interfaces. Every namespace is
removed (and every process started inside it killed, by pid) when the run ends, on
error, and on Ctrl-C.
"""

import atexit
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The checkout's own target directory and tools directory unless told otherwise: no
# machine-specific path.
TARGET = os.environ.get("CARGO_TARGET_DIR") or os.path.join(ROOT, "target")
TOOLS = os.environ.get("PXB_TOOLS") or os.path.join(ROOT, "bench", "tools")
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

_namespaces = []
_procs = []
_tmpdirs = []


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def runs():
    """How many repetitions each measurement gets (median reported)."""
    return int(os.environ.get("RUNS", "3"))


def quick():
    return os.environ.get("QUICK", "0") not in ("", "0")


# ---------------------------------------------------------------- cleanup

def _cleanup(*_):
    for p in reversed(_procs):
        stop(p)
    for ns in reversed(_namespaces):
        _del_ns(ns)
    _namespaces.clear()
    for cg in _cgroups:
        try:
            os.rmdir(cg)
        except OSError:
            pass
    _cgroups.clear()
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)
    _tmpdirs.clear()


def _on_signal(signum, _frame):
    _cleanup()
    sys.exit(128 + signum)


atexit.register(_cleanup)
signal.signal(signal.SIGINT, _on_signal)
signal.signal(signal.SIGTERM, _on_signal)


def tmpdir(tag):
    d = tempfile.mkdtemp(prefix=f"pxb-{tag}-")
    _tmpdirs.append(d)
    return d


# ---------------------------------------------------------------- namespaces

def sh(*argv, check=True, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {r.stdout}{r.stderr}")
    return r


def _del_ns(name):
    r = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
    for pid in r.stdout.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


def netns(tag):
    """Creates namespace `pxb-<tag>` (removing a leftover first), loopback up."""
    name = f"pxb-{tag}"
    _del_ns(name)
    sh("ip", "netns", "add", name)
    _namespaces.append(name)
    sh("ip", "netns", "exec", name, "ip", "link", "set", "lo", "up")
    return name


def drop_ns(name):
    _del_ns(name)
    if name in _namespaces:
        _namespaces.remove(name)


def veth_pair(server_ns, client_ns, server_cidr, client_cidr):
    """A veth pair `srv0` (in server_ns) <-> `cli0` (in client_ns), both up."""
    sh("ip", "link", "add", "pxbtmp0", "type", "veth", "peer", "name", "pxbtmp1")
    sh("ip", "link", "set", "pxbtmp0", "netns", server_ns)
    sh("ip", "link", "set", "pxbtmp1", "netns", client_ns)
    for ns, old, new, cidr in ((server_ns, "pxbtmp0", "srv0", server_cidr),
                               (client_ns, "pxbtmp1", "cli0", client_cidr)):
        sh("ip", "netns", "exec", ns, "ip", "link", "set", old, "name", new)
        if cidr:
            sh("ip", "netns", "exec", ns, "ip", "addr", "add", cidr, "dev", new)
        sh("ip", "netns", "exec", ns, "ip", "link", "set", new, "up")


class Lan:
    """A switched LAN inside namespaces: a bridge (MTU `mtu`) in namespace `pxb-<tag>-sw`,
    servers attached with `server(ns)` (10.97.0.<k>/16) and up to `clients` client
    namespaces `pxb-<tag>-c<j>` (10.97.1.<j>/16, then 10.97.2.<j>...), each its own
    machine with its own address, as PXE clients on a real LAN are (servers that limit
    transfers per client address see distinct clients)."""

    def __init__(self, tag, clients, mtu=1500):
        self.tag, self.mtu, self.n = tag, mtu, 0
        self.sw = netns(f"{tag}-sw")
        sh("ip", "-n", self.sw, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", self.sw, "link", "set", "br0", "mtu", str(mtu), "up")
        self.clients = []
        for j in range(clients):
            ns = netns(f"{tag}-c{j}")
            self._attach(ns, f"10.97.{1 + j // 250}.{1 + j % 250}")
            self.clients.append(ns)
        self.servers = 0

    def _attach(self, ns, ip):
        a, b = f"pxbl{self.n}", f"pxbm{self.n}"
        self.n += 1
        sh("ip", "link", "add", a, "mtu", str(self.mtu), "type", "veth", "peer", "name", b,
           "mtu", str(self.mtu))
        sh("ip", "link", "set", a, "netns", ns)
        sh("ip", "link", "set", b, "netns", self.sw)
        sh("ip", "-n", self.sw, "link", "set", b, "master", "br0", "up")
        sh("ip", "-n", ns, "link", "set", a, "name", "eth0")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/16", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def server(self, ns):
        """Attaches server namespace `ns`; returns its address."""
        self.servers += 1
        ip = f"10.97.0.{self.servers}"
        self._attach(ns, ip)
        return ip

    def drop(self):
        for ns in self.clients + [self.sw]:
            drop_ns(ns)


def rotated(items, round_no):
    """`items` rotated by `round_no`: each round starts with another server, so none
    always runs first (on a cold cache) or last (after the others' load)."""
    if not items:
        return items
    k = round_no % len(items)
    return items[k:] + items[:k]


def in_ns(ns, argv):
    return ["ip", "netns", "exec", ns] + list(argv)


# ---------------------------------------------------------------- processes

CGROUP_ROOT = "/sys/fs/cgroup/cpuacct"
_cgroups = []


def _new_cgroup(name):
    """A cpuacct cgroup (v1) of our own, so a server's CPU is counted with every process
    it forks, even children nobody reaps. None when cgroups are not writable here."""
    if not os.access(CGROUP_ROOT, os.W_OK) or os.environ.get("PXB_NO_CGROUP"):
        return None
    path = f"{CGROUP_ROOT}/pxb-{name}-{os.getpid()}-{len(_cgroups)}"
    try:
        os.mkdir(path)
    except OSError:
        return None
    _cgroups.append(path)
    return path


def start(ns, argv, name, cwd=None, env=None, out=None):
    """Starts `argv` inside `ns` (the pid is the program's own: `ip netns exec` execs),
    in a cpuacct cgroup of its own when possible (`p.cgroup`)."""
    f = open(out, "ab") if out else subprocess.DEVNULL
    cg = _new_cgroup(name)
    full = in_ns(ns, argv)
    if cg:
        full = ["sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$@"', "sh"] + full
    p = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=f,
                         stderr=subprocess.STDOUT if out else subprocess.DEVNULL,
                         cwd=cwd, env=env, start_new_session=True)
    p.bench_name = name
    p.cgroup = cg
    _procs.append(p)
    return p


def stop(p):
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait(timeout=5)
    if p in _procs:
        _procs.remove(p)


def wait_port(ns, port, proto="tcp", timeout=15.0, proc=None):
    """Waits until something listens on `port` inside `ns`."""
    flag = "-ltnH" if proto == "tcp" else "-lunH"
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{proc.bench_name} exited with {proc.returncode} before listening")
        r = subprocess.run(in_ns(ns, ["ss", flag, f"sport = :{port}"]),
                           capture_output=True, text=True)
        if r.stdout.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {proto} port {port} in {ns} after {timeout}s")


def _children():
    kids = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        ppid = int(s[s.rfind(")") + 2:].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def _stat(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    return s[s.rfind(")") + 2:].split()


def _tree(pid):
    kids = _children()
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return out


def _own_cpu(pid):
    f = _stat(pid)
    # fields after the name: state=0 ppid=1 ... utime=11 stime=12 ... starttime=19
    return (int(f[19]), int(f[11]) + int(f[12]))


class CpuMeter:
    """CPU seconds used by a server and every process it forks, between `__enter__` and
    `__exit__`: from its cpuacct cgroup when it has one; otherwise user + system time from
    /proc/<pid>/stat of its process tree, sampled every 20 ms so short-lived children
    (tftpd-hpa forks one per transfer and never reaps into cutime) are counted (only their
    last < 20 ms can be missed)."""

    def __init__(self, proc):
        self.pid = proc.pid
        self.cgroup = getattr(proc, "cgroup", None)
        self.base = {}
        self.last = {}
        self._stop = None
        self.seconds = None

    def _sample(self, into):
        for p in _tree(self.pid):
            try:
                into[p] = _own_cpu(p)
            except (OSError, IndexError):
                pass

    def _cg_usage(self):
        with open(f"{self.cgroup}/cpuacct.usage") as f:
            return int(f.read()) / 1e9

    def __enter__(self):
        import threading
        if self.cgroup:
            self._t0 = self._cg_usage()
            return self
        self._sample(self.base)
        self.last = dict(self.base)
        self._stop = threading.Event()

        def loop():
            while not self._stop.wait(0.02):
                self._sample(self.last)
        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.cgroup:
            self.seconds = self._cg_usage() - self._t0
            return False
        self._stop.set()
        self._thread.join()
        self._sample(self.last)
        ticks = 0
        for p, (start, cpu) in self.last.items():
            b = self.base.get(p)
            ticks += cpu - b[1] if b and b[0] == start else cpu
        self.seconds = ticks / CLK_TCK
        return False


def cpu_seconds(pid):
    """CPU seconds (user + system) of `pid` and its live descendants so far."""
    total = 0
    for p in _tree(pid):
        try:
            total += _own_cpu(p)[1]
        except (OSError, IndexError):
            pass
    return total / CLK_TCK


def peak_rss_mb(pid):
    """VmHWM of `pid` in MB (peak resident set)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def threads_of(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return 0


# ---------------------------------------------------------------- tools

def have(prog):
    return shutil.which(prog) is not None or os.path.exists(f"/usr/sbin/{prog}")


def ensure_apt(prog, package):
    if have(prog):
        return True
    log(f"installing {package} (apt-get) for `{prog}`")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["timeout", "300", "apt-get", "install", "-y", "-qq", package],
                       capture_output=True, text=True, env=env)
    return r.returncode == 0 and have(prog)


def miniserve_bin():
    """miniserve, installed with a bounded `cargo install` into $PXB_TOOLS if missing."""
    for cand in (shutil.which("miniserve"), f"{TOOLS}/bin/miniserve"):
        if cand and os.path.exists(cand):
            return cand
    log("installing miniserve (cargo install, at most 20 min) into " + TOOLS)
    env = dict(os.environ)
    env.pop("CARGO_TARGET_DIR", None)  # its own target dir, not pxelab's
    r = subprocess.run(["timeout", "1200", "cargo", "install", "--locked", "miniserve",
                        "--root", TOOLS], capture_output=True, text=True, env=env)
    if r.returncode != 0:
        log(r.stderr[-2000:])
        return None
    return f"{TOOLS}/bin/miniserve"


def pxelab_bin():
    """The release pxelab binary, built (incrementally) if needed."""
    if os.environ.get("PXELAB_BIN"):
        # Absolute: servers are started with their own working directory.
        return os.path.abspath(os.environ["PXELAB_BIN"])
    log("cargo build --release (pxelab)")
    r = subprocess.run(["cargo", "build", "--release", "--quiet", "--bin", "pxelab"],
                       cwd=ROOT, env=dict(os.environ, CARGO_TARGET_DIR=TARGET))
    if r.returncode != 0:
        raise RuntimeError("cargo build --release failed")
    return f"{TARGET}/release/pxelab"


def pxelab_version():
    r = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                       capture_output=True, text=True)
    return r.stdout.strip()


def make_file(path, mib):
    """A file of `mib` MiB of pseudo-random bytes (incompressible), reused if present."""
    size = mib * 1024 * 1024
    if os.path.exists(path) and os.path.getsize(path) == size:
        return path
    with open(path, "wb") as f:
        block = os.urandom(1024 * 1024)
        for i in range(mib):
            # vary each MiB a little so no two blocks are equal
            f.write(i.to_bytes(8, "little") + block[8:])
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_lab(dirpath, text):
    p = os.path.join(dirpath, "lab.yaml")
    with open(p, "w") as f:
        f.write(text)
    return p


# ---------------------------------------------------------------- statistics and tables

def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def percentile(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(q / 100.0 * (len(xs) - 1)))))
    return xs[k]


def fmt(x, digits=1):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    return f"{x:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}x"


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |",
           "|" + "|".join("---" if i == 0 else "---:" for i in range(len(headers))) + "|"]
    for r in rows:
        out.append("| " + " | ".join(str(c) for c in r) + " |")
    return "\n".join(out)


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1]) // 1024
    load = open("/proc/loadavg").read().split()[0]
    return (f"{os.cpu_count()} x {cpu}, {mem} MiB RAM, Linux {os.uname().release}, "
            f"pxelab {pxelab_version()}, load average {load} at the end")


def save_json(kind, data):
    d = os.environ.get("PXB_RESULTS", os.path.join(ROOT, "bench", "results"))
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"{kind}.json"), "w") as f:
        json.dump(data, f, indent=1)
