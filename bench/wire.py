"""The server's own DHCP reply delay, read off the wire in the server's namespace.

perfdhcp's timestamps (-x t) are taken in its own user space: a reply that waits in
perfdhcp's socket while perfdhcp is busy sending (one process playing 1,000 clients at
12,000 exchanges/s on a 2-core machine) counts as the server's delay. tcpdump in the
server's namespace stamps each packet in the kernel as it arrives and as the reply
leaves, so request -> reply there is the server's time alone (its queue, its work, its
lease write). Both figures are reported; neither replaces the other.

Matching: a DISCOVER and the OFFER with its xid, a REQUEST and the ACK (or NAK) with its
xid; a retransmission restarts the clock (the latest request before the reply)."""

import os
import struct
import subprocess

import lib

# request message type -> the reply types that answer it
ANSWERS = {1: (2,), 3: (5, 6)}
# pcap link types: Ethernet, Linux cooked v1 and v2 (tcpdump -i any)
LINK_HEADER = {1: 14, 113: 16, 276: 20}


class Capture:
    """tcpdump on every interface of `ns`, DHCP ports only, for the life of a `with`.
    Headers only (-s 400): the BOOTP fixed part and the first options."""

    def __init__(self, ns, path):
        self.ns, self.path, self.proc = ns, path, None

    def __enter__(self):
        if not lib.have("tcpdump"):
            lib.ensure_apt("tcpdump", "tcpdump")
        self.proc = subprocess.Popen(
            lib.in_ns(self.ns, ["timeout", "600", "tcpdump", "-i", "any", "-n", "-s", "400",
                                "-B", "32768", "-w", self.path,
                                "udp port 67 or udp port 68 or udp port 4011"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        # tcpdump says "listening on" once its socket is open (after a line or two about
        # the link type).
        for _ in range(5):
            line = self.proc.stderr.readline()
            if not line or "listening" in line:
                break
        else:
            lib.log("tcpdump never said it was listening")
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        self.kernel_drops = None
        for line in err.splitlines():
            if "dropped by kernel" in line:
                self.kernel_drops = int(line.split()[0])
        return False

    def delays_ms(self):
        """Request -> reply delays, in ms, of every answered request."""
        try:
            return delays_ms(self.path)
        finally:
            try:
                os.unlink(self.path)
            except OSError:
                pass


def _packets(path):
    with open(path, "rb") as f:
        head = f.read(24)
        if len(head) < 24:
            return
        magic = struct.unpack("<I", head[:4])[0]
        scale = 1e9 if magic == 0xA1B23C4D else 1e6
        skip = LINK_HEADER.get(struct.unpack("<I", head[20:24])[0])
        if skip is None:
            return
        while True:
            h = f.read(16)
            if len(h) < 16:
                return
            sec, frac, incl, _ = struct.unpack("<IIII", h)
            data = f.read(incl)
            ip = data[skip:]
            if len(ip) < 20 or ip[9] != 17:
                continue
            bootp = ip[(ip[0] & 15) * 4 + 8:]
            if len(bootp) < 240:
                continue
            yield sec + frac / scale, bootp[4:8], _msg_type(bootp)


def _msg_type(bootp):
    i = 240
    while i + 1 < len(bootp):
        code = bootp[i]
        if code == 255:
            return None
        if code == 0:
            i += 1
            continue
        if code == 53 and i + 2 < len(bootp):
            return bootp[i + 2]
        i += 2 + bootp[i + 1]
    return None


def delays_ms(path):
    asked, out = {}, []
    for t, xid, msg in _packets(path):
        if msg in ANSWERS:
            for reply in ANSWERS[msg]:
                asked[(xid, reply)] = t
        elif msg is not None and (xid, msg) in asked:
            t0 = asked.pop((xid, msg))
            for other in (2, 5, 6):
                asked.pop((xid, other), None)
            out.append((t - t0) * 1000.0)
    return out

