"""encap.py - wrap a captured Ethernet frame in a tunnel or shim, as a mirror or a
tunnel endpoint would, for relay.py --encap (tlsdiag samples; no kernel tunnel modules needed).

Kinds (the outer IPv4 header goes 192.0.2.1 -> 192.0.2.2, TEST-NET-1, so it can never be taken
for the session's addresses, which are the inner frame's):

  plain     the frame unchanged
  vxlan     Ethernet / IPv4 / UDP dport 4789 / VXLAN (VNI 100)          / inner Ethernet frame
  vxlan8472 the same on UDP port 8472 (Linux's own default; tlsdiag --vxlan-port 8472)
  geneve    Ethernet / IPv4 / UDP 6081 / Geneve with one 8-byte option, protocol 0x6558 / inner frame
  gre       Ethernet / IPv4 / GRE (no key, no sequence), protocol 0x0800 / inner IP packet
  gre-teb   Ethernet / IPv4 / GRE with key and sequence number, protocol 0x6558 / inner frame
  erspan2   Ethernet / IPv4 / GRE (sequence) 0x88be / ERSPAN type II header / inner frame
  erspan3   Ethernet / IPv4 / GRE (sequence) 0x22eb / ERSPAN type III header with the
            platform-specific subheader (O flag) / inner frame
  gtpu      Ethernet / IPv4 / UDP 2152 / GTPv1-U G-PDU with a sequence number and one PDU
            session container extension header / inner IP packet
  mpls      Ethernet 0x8847 / two MPLS labels (100, 200 bottom of stack) / inner IP packet
  ipip      Ethernet / IPv4 protocol 4 / inner IPv4 packet   (4in4)
  ip6ip     Ethernet / IPv4 protocol 41 / inner IPv6 packet  (6in4)
  cmd       the frame with a Cisco MetaData header (ether type 0x8909, SGT 16) after the MACs
  frag      IP packets over 300 bytes cut into IPv4 or IPv6 fragments of 256 payload bytes (as a
            sender's kernel cuts them: IPv6 fragment header, identification 0x18a0000 + n)
  frag-overlap  the same, and each datagram's first fragment sent twice (an overlap)

wrap() returns a frame, a list of frames (frag), or None (nothing to send for this frame).
"""

import struct

OUTER_SRC_MAC = bytes.fromhex("020000000a01")
OUTER_DST_MAC = bytes.fromhex("020000000a02")
OUTER_SRC = bytes([192, 0, 2, 1])
OUTER_DST = bytes([192, 0, 2, 2])

KINDS = ("plain", "vxlan", "vxlan8472", "geneve", "gre", "gre-teb", "erspan2", "erspan3",
         "gtpu", "mpls", "ipip", "ip6ip", "cmd", "frag", "frag-overlap")
FRAG_ABOVE = 300
FRAG_SIZE = 256


def csum16(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


class Encap:
    """Wraps frames of one kind; keeps the counters a real encapsulator keeps."""

    def __init__(self, kind):
        if kind not in KINDS:
            raise ValueError("unknown encapsulation %r (one of %s)" % (kind, ", ".join(KINDS)))
        self.kind = kind
        self.ip_id = 0
        self.seq = 0

    def outer_ip(self, proto, payload):
        self.ip_id = (self.ip_id + 1) & 0xFFFF
        h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), self.ip_id, 0x4000, 64, proto, 0,
                        OUTER_SRC, OUTER_DST)
        h = h[:10] + struct.pack("!H", csum16(h)) + h[12:]
        return OUTER_DST_MAC + OUTER_SRC_MAC + b"\x08\x00" + h + payload

    def udp(self, sport, dport, payload):
        # UDP checksum 0: "not computed", allowed over IPv4 (and what most VTEPs send).
        return self.outer_ip(17, struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload)

    def next_seq(self):
        self.seq += 1
        return self.seq

    def wrap(self, frame):
        k = self.kind
        ether_type = struct.unpack_from("!H", frame, 12)[0]
        ip = frame[14:]
        if k == "plain":
            return frame
        if k in ("vxlan", "vxlan8472"):
            hdr = struct.pack("!B3sI", 0x08, b"\0\0\0", 100 << 8)
            # The source port is a hash of the inner flow, as RFC 7348 suggests.
            return self.udp(49152 + (sum(frame[26:38]) & 0x3FFF), 4789 if k == "vxlan" else 8472, hdr + frame)
        if k == "geneve":
            # One option: class 0x0104 (a made-up vendor class), type 0x01, 4 bytes of data.
            opt = struct.pack("!HBB", 0x0104, 0x01, 1) + b"tlsd"
            hdr = struct.pack("!BBHI", len(opt) // 4, 0, 0x6558, 100 << 8)
            return self.udp(49152 + (sum(frame[26:38]) & 0x3FFF), 6081, hdr + opt + frame)
        if k == "gre":
            return self.outer_ip(47, struct.pack("!HH", 0, ether_type) + ip)
        if k == "gre-teb":
            return self.outer_ip(47, struct.pack("!HHII", 0x3000, 0x6558, 0xABCD, self.next_seq()) + frame)
        if k == "erspan2":
            # Version 1, VLAN 0, COS 0, En 0, T 0, session 7; index 0.
            erspan = struct.pack("!HHI", 0x1000, 7, 0)
            return self.outer_ip(47, struct.pack("!HHI", 0x1000, 0x88BE, self.next_seq()) + erspan + frame)
        if k == "erspan3":
            # Version 2, session 7, timestamp, SGT 16, P 0, FT 0 (Ethernet), HW ID 1, O 1.
            erspan = struct.pack("!HHIHH", 0x2000, 7, self.seq * 100, 16, (1 << 4) | 1)
            platform = struct.pack("!II", 3 << 26, 0)   # platform ID 3, then timestamp bits
            return self.outer_ip(47, struct.pack("!HHI", 0x1000, 0x22EB, self.next_seq()) + erspan + platform + frame)
        if k == "gtpu":
            # Flags 0x36: version 1, PT 1, E and S; G-PDU; TEID 0x1234; then sequence, N-PDU,
            # next extension 0x85 (PDU session container: 1 word = length, 2 bytes, next type 0).
            ext = struct.pack("!BBBB", 1, 0x00, 0x09, 0)
            body = struct.pack("!HBB", self.next_seq() & 0xFFFF, 0, 0x85) + ext + ip
            return self.udp(2152, 2152, struct.pack("!BBHI", 0x36, 0xFF, len(body), 0x1234) + body)
        if k == "mpls":
            labels = struct.pack("!II", (100 << 12) | 64, (200 << 12) | 0x100 | 64)
            return frame[:12] + b"\x88\x47" + labels + ip
        if k == "ipip":
            if ether_type != 0x0800:
                return None
            return self.outer_ip(4, ip)
        if k == "ip6ip":
            if ether_type != 0x86DD:
                return None
            return self.outer_ip(41, ip)
        if k == "cmd":
            # Version 1, length 1, option: type 1 (SGT) with 2 bytes, SGT 16, then the ether type.
            return frame[:12] + struct.pack("!HBBHH", 0x8909, 1, 1, 0x0001, 16) + frame[12:]
        if k in ("frag", "frag-overlap"):
            return self.fragment(frame, ether_type, k == "frag-overlap")
        raise AssertionError(k)

    def fragment(self, frame, ether_type, overlap):
        ip = frame[14:]
        if len(ip) <= FRAG_ABOVE or ether_type not in (0x0800, 0x86DD):
            return frame
        self.seq += 1
        out = []
        if ether_type == 0x86DD:
            hdr, body = bytearray(ip[:40]), ip[40:40 + struct.unpack_from("!H", ip, 4)[0]]
            nh = hdr[6]
            for off in range(0, len(body), FRAG_SIZE):
                chunk = body[off:off + FRAG_SIZE]
                more = off + len(chunk) < len(body)
                h = bytearray(hdr)
                struct.pack_into("!H", h, 4, 8 + len(chunk))
                h[6] = 44
                fh = struct.pack("!BBHI", nh, 0, off | int(more), 0x18A0000 + self.seq)
                out.append(frame[:14] + bytes(h) + fh + chunk)
        else:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack_from("!H", ip, 2)[0]
            hdr, body = bytearray(ip[:ihl]), ip[ihl:total]
            for off in range(0, len(body), FRAG_SIZE):
                chunk = body[off:off + FRAG_SIZE]
                more = off + len(chunk) < len(body)
                h = bytearray(hdr)
                struct.pack_into("!HHH", h, 2, ihl + len(chunk), (0x18A0 + self.seq) & 0xFFFF,
                                 (off // 8) | (0x2000 if more else 0))
                struct.pack_into("!H", h, 10, 0)
                struct.pack_into("!H", h, 10, csum16(bytes(h)))
                out.append(frame[:14] + bytes(h) + chunk)
        if overlap and len(out) > 1:
            out.insert(1, out[0])
        return out
