#!/usr/bin/env python3
"""Replays a Raspberry Pi 4 EEPROM bootloader's DHCP, as it sends it (Raspberry Pi's
bootloader docs: option 60 `PXEClient:Arch:00000:UNDI:002001`, option 93 = 0, option 97
the GUID `RPi4` + board revision + low MAC bytes + serial). Usage:

    pi4_dhcp.py MAC SERIAL dora|discover SECONDS

Prints one JSON object per reply received: {"type", "yiaddr", "siaddr", "options":
{code: hex}}; `null` when nothing came within SECONDS (a held Pi)."""
import json
import random
import socket
import struct
import sys
import time

mac = bytes.fromhex(sys.argv[1].replace(":", ""))
serial = bytes.fromhex(sys.argv[2])
mode = sys.argv[3]
limit = float(sys.argv[4])
guid = bytes([0]) + struct.pack("<I", 0x34695052) + struct.pack("<I", 0x00C03111) + mac[2:] + serial[::-1]
xid = random.getrandbits(32)


def packet(msg, extra):
    b = bytearray(236)
    b[0], b[1], b[2] = 1, 1, 6
    b[4:8] = struct.pack("!I", xid)
    b[10] = 0x80  # broadcast: the bootloader has no address yet
    b[28:34] = mac
    b += b"\x63\x82\x53\x63"
    opts = [
        (53, bytes([msg])),
        (55, bytes([1, 3, 43, 60, 66, 67, 128, 129, 130, 131, 132, 133, 134, 135])),
        (57, struct.pack("!H", 1500)),
        (97, guid),
        (94, bytes([1, 2, 1])),
        (93, bytes([0, 0])),
        (60, b"PXEClient:Arch:00000:UNDI:002001"),
    ] + extra
    for code, data in opts:
        b += bytes([code, len(data)]) + data
    b += b"\xff"
    return bytes(b)


def parse(b):
    opts = {}
    i = 240
    while i < len(b) and b[i] != 255:
        if b[i] == 0:
            i += 1
            continue
        code, n = b[i], b[i + 1]
        opts[code] = b[i + 2 : i + 2 + n]
        i += 2 + n
    return {
        "type": opts.get(53, b"\x00")[0],
        "yiaddr": socket.inet_ntoa(b[16:20]),
        "siaddr": socket.inet_ntoa(b[20:24]),
        "options": {str(k): v.hex() for k, v in opts.items()},
    }


s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"eth0")
s.bind(("0.0.0.0", 68))


def exchange(msg, extra, want):
    s.sendto(packet(msg, extra), ("255.255.255.255", 67))
    end = time.time() + limit
    while time.time() < end:
        s.settimeout(max(0.05, end - time.time()))
        try:
            b, _ = s.recvfrom(2048)
        except socket.timeout:
            break
        if len(b) > 240 and b[4:8] == struct.pack("!I", xid) and b[28:34] == mac:
            r = parse(b)
            if r["type"] == want:
                return r
    return None


offer = exchange(1, [], 2)
print(json.dumps(offer), flush=True)
if mode == "dora" and offer:
    server = bytes.fromhex(offer["options"]["54"])
    ack = exchange(3, [(50, socket.inet_aton(offer["yiaddr"])), (54, server)], 5)
    print(json.dumps(ack), flush=True)
