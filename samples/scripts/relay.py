#!/usr/bin/python3
"""relay.py - tiny user-space Ethernet bridge / TUN pipe used to make tlsdiag samples.

Two modes (run as root, inside a network namespace you created yourself):

  bridge  Forward raw Ethernet frames between two interfaces with AF_PACKET
          sockets (like a patch cable with a brain). It can
            * drop chosen server->client TCP data segments   (--drop-s2c-data 5,9)
            * drop every server->client frame above N bytes   (--drop-s2c-larger 1000)
            * stall: forward the server's bytes up to the end of its Nth TLS
              record (the frame that crosses that end is cut there, lengths and
              checksums redone), then forward nothing more from the server
              but its bare ACKs (--stall-s2c-records N): a server whose
              application stops sending in the middle of its flight; the same
              for the client's bytes (--stall-c2s-records N)
              (a PMTU black hole: the big frames vanish, no ICMP is sent)
            * reorder: hold the Nth server->client data segment and send it
              right after the next server->client frame       (--reorder-s2c-data 12)
            * mirror every forwarded frame to a third interface with one
              802.1Q tag (--mirror IF --vlan 100) or two tags, 802.1ad 0x88a8
              outer + 0x8100 inner (--mirror IF --vlan 100 --outer-vlan 200),
              like a SPAN port feeding a capture box; --vlan 0: untagged copies.
            * encapsulate the mirror's copies instead (--mirror IF --encap KIND[,KIND..]):
              one copy per kind listed, each wrapped by encap.py (VXLAN, Geneve,
              GRE, GRE+TEB, ERSPAN II/III, GTP-U, MPLS, IP-in-IP, 6in4, Cisco
              MetaData; "plain" = unchanged, so "plain,plain" mirrors every frame
              twice and "plain,vxlan" sends the inner and the outer copy; "frag"
              cuts large IP packets into fragments, "frag-overlap" with an overlap).
            * forge: just before the Nth server->client data segment, send a
              copy of it (same addresses, ports, seq, ack) whose payload is a
              fatal TLS alert (--forge-s2c-alert N); before the first
              client->server data segment (the ClientHello), a copy with the
              SNI bytes OLD replaced by NEW (same length: --forge-c2s-sni OLD=NEW).
              Checksums are right. The forged copy goes to the mirror only, so
              the capture there sees forged-then-real (as a sensor sees a
              TTL-limited injection that dies before the peer) while the peer
              receives only the real bytes.
            * corrupt: just before the Nth server->client data segment, send a
              copy carrying a fatal alert with a wrong TCP checksum to the
              client (and the mirror) (--bad-csum-s2c N): the client's kernel
              drops it, the real segment follows at once (as a retransmission
              would after a drop). --bad-csum-payload same: the copy carries
              the real payload instead of an alert.
          Frames the kernel reports as PACKET_OUTGOING are skipped (no loops).
          The interfaces must have TSO/GSO/GRO and tx checksum offload off so
          that every frame is a real, MTU sized frame with a valid checksum.

  tun     Create two TUN devices (IFF_TUN | IFF_NO_PI: raw IP, no Ethernet) and
          copy packets between them, so two namespaces can talk over raw-IP
          links; tcpdump on such a device writes link type RAW (101).

Every run is bounded by --timeout seconds. A log of what was done goes to stderr.
"""
import argparse
import fcntl
import os
import select
import signal
import socket
import struct
import sys
import time

import encap

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4


def log(msg):
    sys.stderr.write("relay: %s\n" % msg)
    sys.stderr.flush()


def parse_list(s):
    if not s:
        return set()
    return {int(x) for x in s.split(",") if x.strip()}


def tcp_info(frame):
    """Return (src_port, dst_port, payload_len, flags) for an Ethernet/IP/TCP frame, else None."""
    if len(frame) < 14:
        return None
    off = 12
    etype = struct.unpack_from("!H", frame, off)[0]
    off += 2
    while etype in (0x8100, 0x88A8) and len(frame) >= off + 4:
        etype = struct.unpack_from("!H", frame, off + 2)[0]
        off += 4
    if etype == 0x0800:
        if len(frame) < off + 20:
            return None
        ihl = (frame[off] & 0x0F) * 4
        total = struct.unpack_from("!H", frame, off + 2)[0]
        if frame[off + 9] != 6:
            return None
        l4 = off + ihl
        ip_end = off + total
    elif etype == 0x86DD:
        if len(frame) < off + 40:
            return None
        plen = struct.unpack_from("!H", frame, off + 4)[0]
        if frame[off + 6] != 6:  # no extension headers expected here
            return None
        l4 = off + 40
        ip_end = l4 + plen
    else:
        return None
    if len(frame) < l4 + 20:
        return None
    sport, dport = struct.unpack_from("!HH", frame, l4)
    doff = (frame[l4 + 12] >> 4) * 4
    flags = frame[l4 + 13]
    return sport, dport, max(0, ip_end - l4 - doff), flags


def vlan_tag(frame, vlan, outer):
    """Insert one 802.1Q tag, or 802.1ad outer + 802.1Q inner, after the MAC addresses."""
    tags = b""
    if outer is not None:
        tags += struct.pack("!HH", 0x88A8, outer & 0x0FFF)
    tags += struct.pack("!HH", 0x8100, vlan & 0x0FFF)
    return frame[:12] + tags + frame[12:]


ALERT = bytes([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28])   # fatal handshake_failure


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def rebuild(frame, payload, bad_checksum=False):
    """The Ethernet/IP/TCP frame with another TCP payload: lengths and checksums redone
    (the TCP checksum then deliberately broken if bad_checksum)."""
    off = 12
    etype = struct.unpack_from("!H", frame, off)[0]
    off += 2
    while etype in (0x8100, 0x88A8):
        etype = struct.unpack_from("!H", frame, off + 2)[0]
        off += 4
    f = bytearray(frame)
    if etype == 0x0800:
        ihl = (f[off] & 0x0F) * 4
        l4 = off + ihl
        doff = (f[l4 + 12] >> 4) * 4
        f = f[:l4 + doff] + payload
        struct.pack_into("!H", f, off + 2, ihl + doff + len(payload))
        struct.pack_into("!H", f, off + 10, 0)
        struct.pack_into("!H", f, off + 10, csum16(bytes(f[off:off + ihl])))
        pseudo = bytes(f[off + 12:off + 20]) + struct.pack("!BBH", 0, 6, doff + len(payload))
    elif etype == 0x86DD:
        l4 = off + 40
        doff = (f[l4 + 12] >> 4) * 4
        f = f[:l4 + doff] + payload
        struct.pack_into("!H", f, off + 4, doff + len(payload))
        pseudo = bytes(f[off + 8:off + 40]) + struct.pack("!IxxxB", doff + len(payload), 6)
    else:
        raise ValueError("not IP")
    struct.pack_into("!H", f, l4 + 16, 0)
    c = csum16(pseudo + bytes(f[l4:]))
    if bad_checksum:
        c ^= 0x5A5A
    struct.pack_into("!H", f, l4 + 16, c)
    return bytes(f)


def tcp_payload(frame, ti):
    """The TCP payload of a frame (tcp_info ti gives its length; it ends the IP packet)."""
    off = 12
    etype = struct.unpack_from("!H", frame, off)[0]
    off += 2
    while etype in (0x8100, 0x88A8):
        etype = struct.unpack_from("!H", frame, off + 2)[0]
        off += 4
    l4 = off + ((frame[off] & 0x0F) * 4 if etype == 0x0800 else 40)
    start = l4 + (frame[l4 + 12] >> 4) * 4
    return frame[start:start + ti[2]]


def tcp_off(frame):
    """Offset of the TCP header in an Ethernet/IP/TCP frame."""
    off = 12
    etype = struct.unpack_from("!H", frame, off)[0]
    off += 2
    while etype in (0x8100, 0x88A8):
        etype = struct.unpack_from("!H", frame, off + 2)[0]
        off += 4
    return off + ((frame[off] & 0x0F) * 4 if etype == 0x0800 else 40)


def tcp_seq(frame):
    """The TCP sequence number of an Ethernet/IP/TCP frame."""
    return struct.unpack_from("!I", frame, tcp_off(frame) + 4)[0]


class Staller:
    """Finds where the server's Nth TLS record ends and cuts the stream there."""

    def __init__(self, records):
        self.records = records
        self.base = None        # sequence number of the first server payload byte
        self.stream = b""       # server bytes in order, until the cut is known
        self.cut = None         # stream offset where forwarding stops
        self.stalled = False

    def frame(self, frame, ti):
        """The frame to forward (maybe cut), or None to drop it. After the cut only the
        server's bare ACKs go on (its kernel still acknowledges; its application is silent),
        with the sequence number of the cut."""
        if self.stalled:
            if ti is None or ti[2] > 0 or ti[3] & 0x07:
                return None
            f = bytearray(frame)
            struct.pack_into("!I", f, tcp_off(frame) + 4, (self.base + self.cut) % (1 << 32))
            return rebuild(bytes(f), b"")
        if ti is None or ti[2] == 0:
            return frame
        pl = tcp_payload(frame, ti)
        seq = tcp_seq(frame)
        if self.base is None:
            self.base = seq
        off = (seq - self.base) % (1 << 32)
        if self.cut is None and off == len(self.stream):
            self.stream += pl
            pos, n = 0, 0
            while pos + 5 <= len(self.stream):
                pos += 5 + struct.unpack_from("!H", self.stream, pos + 3)[0]
                n += 1
                if n == self.records:
                    self.cut = pos
                    break
        if self.cut is None or off + len(pl) <= self.cut:
            return frame
        self.stalled = True
        if off >= self.cut:
            return None
        log("stall: server stream cut after %d bytes (end of TLS record #%d)" % (self.cut, self.records))
        return rebuild(frame, pl[:self.cut - off])


def open_if(name, recv=True):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL) if recv else 0)
    s.bind((name, ETH_P_ALL if recv else 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 21)
    return s


def bridge(a):
    drop_idx = parse_list(a.drop_s2c_data)
    reorder_idx = parse_list(a.reorder_s2c_data)
    cs = open_if(a.client_if)
    ss = open_if(a.server_if)
    ms = open_if(a.mirror, recv=False) if a.mirror else None
    stats = {"c2s": 0, "s2c": 0, "dropped": 0, "reordered": 0, "mirrored": 0}
    end = time.monotonic() + a.timeout
    log("bridge %s <-> %s%s, timeout %ss" % (
        a.client_if, a.server_if, (", mirror -> %s" % a.mirror) if a.mirror else "", a.timeout))
    try:
        _bridge_loop(a, cs, ss, ms, drop_idx, reorder_idx, stats, end)
    finally:
        log("done: %s" % stats)


def _bridge_loop(a, cs, ss, ms, drop_idx, reorder_idx, stats, end):
    s2c_data = 0
    c2s_data = 0
    held = None          # (frame, deadline)
    staller = Staller(a.stall_s2c_records) if a.stall_s2c_records else None
    c_staller = Staller(a.stall_c2s_records) if a.stall_c2s_records else None

    encaps = [encap.Encap(k) for k in a.encap.split(",")] if a.encap else []

    def mirror(frame):
        if ms is None:
            return
        try:
            if encaps:
                for e in encaps:
                    wrapped = e.wrap(frame)
                    for w in wrapped if isinstance(wrapped, list) else [wrapped] if wrapped else []:
                        ms.send(w)
                        stats["mirrored"] += 1
                return
            tagged = frame if a.vlan == 0 and a.outer_vlan is None else vlan_tag(frame, a.vlan, a.outer_vlan)
            ms.send(tagged)
            stats["mirrored"] += 1
        except OSError as e:
            log("mirror of %d bytes failed: %s" % (len(frame), e))

    def send(sock, frame):
        try:
            sock.send(frame)
        except OSError as e:
            log("send of %d bytes failed: %s" % (len(frame), e))
        mirror(frame)

    while True:
        now = time.monotonic()
        if now >= end:
            break
        wait = end - now
        if held is not None:
            wait = min(wait, max(0.0, held[1] - now))
        r, _, _ = select.select([cs, ss], [], [], wait)
        if held is not None and time.monotonic() >= held[1] and not r:
            send(cs, held[0])           # nothing came after it: release anyway
            log("released held frame after timeout")
            held = None
        for sock in r:
            frame, addr = sock.recvfrom(65535)
            if addr[2] == PACKET_OUTGOING:
                continue
            if sock is cs:
                stats["c2s"] += 1
                ti = tcp_info(frame)
                if c_staller is not None and ti is not None and ti[1] == a.server_port:
                    frame = c_staller.frame(frame, ti)
                    if frame is None:
                        stats["dropped"] += 1
                        continue
                    ti = tcp_info(frame)
                if ti is not None and ti[1] == a.server_port and ti[2] > 0:
                    c2s_data += 1
                    if c2s_data == 1 and a.forge_c2s_sni:
                        old, new = (x.encode() for x in a.forge_c2s_sni.split("=", 1))
                        pl = tcp_payload(frame, ti)
                        if len(old) == len(new) and old in pl:
                            mirror(rebuild(frame, pl.replace(old, new)))
                            stats["forged"] = stats.get("forged", 0) + 1
                            log("forged ClientHello (SNI %s -> %s) sent to the mirror only" % (old.decode(), new.decode()))
                        else:
                            log("ClientHello without SNI %r: nothing forged" % old)
                send(ss, frame)
                continue
            # server -> client
            stats["s2c"] += 1
            if a.drop_s2c_larger and len(frame) > a.drop_s2c_larger:
                stats["dropped"] += 1
                log("drop s2c frame of %d bytes (> %d)" % (len(frame), a.drop_s2c_larger))
                continue
            ti = tcp_info(frame)
            if staller is not None and ti is not None and ti[0] == a.server_port:
                frame = staller.frame(frame, ti)
                if frame is None:
                    stats["dropped"] += 1
                    continue
                ti = tcp_info(frame)
            is_data = ti is not None and ti[0] == a.server_port and ti[2] > 0
            if is_data:
                s2c_data += 1
                if s2c_data == a.forge_s2c_alert:
                    mirror(rebuild(frame, ALERT))
                    stats["forged"] = stats.get("forged", 0) + 1
                    log("forged alert ahead of s2c data segment #%d sent to the mirror only" % s2c_data)
                if s2c_data == a.bad_csum_s2c:
                    pl = tcp_payload(frame, ti) if a.bad_csum_payload == "same" else ALERT
                    send(cs, rebuild(frame, pl, bad_checksum=True))
                    stats["bad_checksum"] = stats.get("bad_checksum", 0) + 1
                    log("copy of s2c data segment #%d with a wrong TCP checksum sent (%d bytes payload)" % (s2c_data, len(pl)))
                if s2c_data in drop_idx:
                    stats["dropped"] += 1
                    log("drop s2c data segment #%d (%d bytes payload)" % (s2c_data, ti[2]))
                    continue
                if s2c_data in reorder_idx and held is None:
                    held = (frame, time.monotonic() + 0.5)
                    log("hold s2c data segment #%d" % s2c_data)
                    continue
            send(cs, frame)
            if held is not None:
                send(cs, held[0])
                stats["reordered"] += 1
                log("released held segment after the next s2c frame")
                held = None
    if held is not None:
        send(cs, held[0])


# ---- tun mode ---------------------------------------------------------------
TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def tun(a):
    fa = open_tun(a.tun_a)
    fb = open_tun(a.tun_b)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("ready\n")
    end = time.monotonic() + a.timeout
    n = 0
    log("tun pipe %s <-> %s, timeout %ss" % (a.tun_a, a.tun_b, a.timeout))
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([fa, fb], [], [], left)
        for fd in r:
            try:
                pkt = os.read(fd, 65535)
            except OSError:
                continue
            try:
                os.write(fb if fd == fa else fa, pkt)
                n += 1
            except OSError:
                pass   # peer device may be down for a moment while it is moved/configured
    log("tun pipe done, %d packets" % n)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    b = sub.add_parser("bridge")
    b.add_argument("--client-if", required=True)
    b.add_argument("--server-if", required=True)
    b.add_argument("--server-port", type=int, default=443)
    b.add_argument("--timeout", type=float, required=True)
    b.add_argument("--drop-s2c-data", default="", help="1-based indices of server data segments to drop")
    b.add_argument("--reorder-s2c-data", default="", help="1-based indices of server data segments to delay by one frame")
    b.add_argument("--drop-s2c-larger", type=int, default=0, help="drop server->client frames longer than N bytes")
    b.add_argument("--stall-s2c-records", type=int, default=0, help="forward the server's bytes up to the end of its Nth TLS record, then nothing")
    b.add_argument("--stall-c2s-records", type=int, default=0, help="the same for the client's bytes: up to the end of its Nth TLS record")
    b.add_argument("--mirror", default="", help="interface that gets a VLAN-tagged copy of every forwarded frame")
    b.add_argument("--vlan", type=int, default=100)
    b.add_argument("--encap", default="", help="mirror copies wrapped in these encapsulations (encap.py), one copy each")
    b.add_argument("--outer-vlan", type=int, default=None, help="add an 802.1ad (0x88a8) outer tag too (QinQ)")
    b.add_argument("--forge-s2c-alert", type=int, default=0, help="forged alert ahead of the Nth server data segment (mirror only)")
    b.add_argument("--forge-c2s-sni", default="", help="OLD=NEW: forged ClientHello with another SNI of the same length ahead of the real one (mirror only)")
    b.add_argument("--bad-csum-s2c", type=int, default=0, help="copy with a wrong TCP checksum ahead of the Nth server data segment")
    b.add_argument("--bad-csum-payload", choices=["alert", "same"], default="alert")
    t = sub.add_parser("tun")
    t.add_argument("--tun-a", required=True)
    t.add_argument("--tun-b", required=True)
    t.add_argument("--timeout", type=float, required=True)
    t.add_argument("--ready-file", default="")
    a = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))   # so "done: stats" is still logged
    if a.timeout <= 0 or a.timeout > 600:
        p.error("--timeout must be in (0, 600]")
    if a.mode == "bridge":
        bridge(a)
    else:
        tun(a)


if __name__ == "__main__":
    main()
