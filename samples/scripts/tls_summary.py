#!/usr/bin/env python3
"""tls_summary.py - one line per TCP connection: what tshark sees on the wire.

Usage: tls_summary.py [--keylog KEYLOGFILE] FILE.pcap [FILE2.pcap ...]

Each connection is printed as
    #<n> <client ip:port> -> <server ip:port>: f1 C>S SYN; f4 C>S ClientHello(sni=good.test); ...
"C>S" = client to server (client = sender of the first SYN, else the non-443 side).
Plaintext alerts show level and description; encrypted records show their record
payload length, e.g. "appdata[19]" is the size of an encrypted TLS 1.3 alert
(2 alert bytes + 1 inner content type + 16 AEAD tag).  With --keylog (an NSS key log
written by the server or client) tshark decrypts and shows "appdata[19]=Alert(...)".
Used by tls_cases.sh to write the "On the wire" part of each case README.
"""
import json
import subprocess
import sys

HS = {0: "HelloRequest", 1: "ClientHello", 2: "ServerHello", 4: "NewSessionTicket",
      5: "EndOfEarlyData", 8: "EncryptedExtensions", 11: "Certificate", 12: "ServerKeyExchange",
      13: "CertificateRequest", 14: "ServerHelloDone", 15: "CertificateVerify",
      16: "ClientKeyExchange", 20: "Finished", 22: "CertificateStatus", 24: "KeyUpdate"}
ALERTS = {0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac", 22: "record_overflow",
          40: "handshake_failure", 42: "bad_certificate", 43: "unsupported_certificate",
          44: "certificate_revoked", 45: "certificate_expired", 46: "certificate_unknown",
          47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied", 50: "decode_error",
          51: "decrypt_error", 70: "protocol_version", 71: "insufficient_security",
          80: "internal_error", 86: "inappropriate_fallback", 90: "user_canceled",
          109: "missing_extension", 110: "unsupported_extension", 112: "unrecognized_name",
          113: "bad_certificate_status_response", 115: "unknown_psk_identity",
          116: "certificate_required", 120: "no_application_protocol"}
VERS = {"0x0300": "SSL3", "0x0301": "1.0", "0x0302": "1.1", "0x0303": "1.2", "0x0304": "1.3"}
HRR_RANDOM = "cf:21:ad:74:e5:9a:61:11:be:1d:8c:02:1e:65:b8:91:c2:a2:11:16:7a:bb:8c:5e:07:9e:09:e2:c8:a8:33:9c"


def aslist(x):
    if x is None:
        return []
    return x if isinstance(x, list) else [x]


def find(obj, key):
    """all values of key anywhere below obj"""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == key:
                out.extend(aslist(v))
            else:
                out.extend(find(v, key))
    elif isinstance(obj, list):
        for v in obj:
            out.extend(find(v, key))
    return out


def describe_handshake(h, rec_version):
    t = h.get("tls.handshake.type")
    if t is None:
        return None
    t = int(t)
    name = HS.get(t, "hs%d" % t)
    if t == 1:
        sni = find(h, "tls.handshake.extensions_server_name")
        sv = find(h, "tls.handshake.extensions.supported_version")
        bits = []
        if sni:
            # a hostile SNI (tls*-hostile-names) must not write control bytes into a README
            bits.append("sni=" + "".join(c if c.isprintable() else "\\x%02x" % ord(c) for c in sni[0]))
        if sv:
            bits.append("versions=" + ",".join(VERS.get(v, v) for v in sv))
        else:
            bits.append("version=" + VERS.get(h.get("tls.handshake.version", ""), "?"))
        ks = find(h, "tls.handshake.extensions_key_share_group")
        if ks:
            bits.append("key_share=" + ",".join(ks))
        alpn = find(h, "tls.handshake.extensions_alpn_str")
        if alpn:
            bits.append("alpn=" + ",".join(alpn))
        if "41" in find(h, "tls.handshake.extension.type"):
            bits.append("psk")
        cs = find(h, "tls.handshake.ciphersuite")
        if "0x5600" in cs:
            bits.append("FALLBACK_SCSV")
        return "%s(%s)" % (name, " ".join(bits))
    if t == 2:
        if h.get("tls.handshake.random") == HRR_RANDOM:
            name = "HelloRetryRequest"
        sv = find(h, "tls.handshake.extensions.supported_version")
        v = VERS.get(sv[0], sv[0]) if sv else VERS.get(h.get("tls.handshake.version", ""), "?")
        cs = h.get("tls.handshake.ciphersuite", "?")
        extra = " psk" if "41" in find(h, "tls.handshake.extension.type") else ""
        if name == "HelloRetryRequest":
            g = find(h, "tls.handshake.extensions_key_share_selected_group")
            extra = " group=%s" % (g[0] if g else "?")
        return "%s(%s %s%s)" % (name, v, cs, extra)
    return name


def describe_record(r):
    ct = r.get("tls.record.content_type")
    op = r.get("tls.record.opaque_type")
    ln = r.get("tls.record.length", "?")
    if op is not None:                     # TLS 1.3 encrypted record
        if ct is None or int(ct) == 23 and "tls.handshake" not in r and "tls.alert_message" not in r:
            return "appdata[%s]" % ln
        inner = describe_record({k: v for k, v in r.items() if k != "tls.record.opaque_type"})
        return "appdata[%s]=%s" % (ln, (inner or "?").replace(", plaintext", ""))
    if ct is None:
        return None
    ct = int(ct)
    if ct == 20:
        return "ChangeCipherSpec"
    if ct == 21:
        descs = find(r, "tls.alert_message.desc")
        levels = find(r, "tls.alert_message.level")
        if descs:
            d = int(descs[0])
            lv = {"1": "warning", "2": "fatal"}.get(levels[0] if levels else "", "?")
            return "Alert(%s %s %d, plaintext)" % (lv, ALERTS.get(d, "?"), d)
        return "Alert(encrypted[%s])" % ln
    if ct == 22:
        hs = [describe_handshake(h, r.get("tls.record.version"))
              for h in aslist(r.get("tls.handshake")) if isinstance(h, dict)]
        hs = [h for h in hs if h]
        if not hs:
            return "EncryptedHandshake[%s]" % ln
        return ",".join(hs)
    if ct == 23:
        return "appdata[%s]" % ln
    return "record%d[%s]" % (ct, ln)


def main(files, keylog=None):
    frames = []
    base = 0
    for f in files:
        opts = ["-o", "tls.keylog_file:" + keylog] if keylog else []
        out = subprocess.run(["tshark", "-r", f, "-T", "json", "--no-duplicate-keys"] + opts +
                             ["-J", "frame ip ipv6 tcp tls"],
                             capture_output=True, text=True, check=True).stdout
        pk = json.loads(out) if out.strip() else []
        for p in pk:
            frames.append((f, p["_source"]["layers"]))
    streams = {}
    order = []
    for idx, (f, l) in enumerate(frames):
        tcp = l.get("tcp")
        if not tcp:
            continue
        ip = l.get("ip") or l.get("ipv6") or {}
        src = ip.get("ip.src") or ip.get("ipv6.src")
        dst = ip.get("ip.dst") or ip.get("ipv6.dst")
        sp, dp = int(tcp["tcp.srcport"]), int(tcp["tcp.dstport"])
        key = tuple(sorted([(src, sp), (dst, dp)]))
        num = l["frame"]["frame.number"] if len(files) == 1 else "%s:%s" % (f.split("/")[-1], l["frame"]["frame.number"])
        flags = int(tcp["tcp.flags"], 16)
        if key not in streams:
            if (flags & 0x12) == 0x02 or dp == 443 or (sp != 443 and dp < sp):
                client = (src, sp)
            else:
                client = (dst, dp)
            streams[key] = {"client": client, "ev": []}
            order.append(key)
        s = streams[key]
        d = "C>S" if (src, sp) == s["client"] else "S>C"
        ev = []
        if flags & 0x02:
            ev.append("SYN" if not flags & 0x10 else "SYN-ACK")
        tls = aslist(l.get("tls"))
        recs = []
        for t in tls:
            if isinstance(t, dict):
                for r in aslist(t.get("tls.record")):
                    dr = describe_record(r) if isinstance(r, dict) else None
                    if dr:
                        recs.append(dr)
        tlen = int(tcp.get("tcp.len", "0"))
        if recs:
            ev.append(" + ".join(recs))
        elif tlen > 0:
            payload = tcp.get("tcp.payload", "")
            try:
                b = bytes.fromhex(payload.replace(":", ""))[:24]
                txt = "".join(chr(c) if 32 <= c < 127 else "." for c in b)
            except ValueError:
                txt = ""
            if txt and b[:1] not in (b"\x14", b"\x15", b"\x16", b"\x17"):
                ev.append('data[%d "%s"]' % (tlen, txt))
            else:
                ev.append("segment[%d]" % tlen)   # part of a record reassembled later
        if flags & 0x01:
            ev.append("FIN")
        if flags & 0x04:
            ev.append("RST")
        if ev:
            s["ev"].append("f%s %s %s" % (num, d, " ".join(ev)))
    for i, key in enumerate(order, 1):
        s = streams[key]
        c = s["client"]
        sv = key[0] if key[1] == c else key[1]
        fmt = lambda a: ("[%s]:%d" % a) if ":" in a[0] else ("%s:%d" % a)
        print("#%d %s -> %s: %s" % (i, fmt(c), fmt(sv), "; ".join(s["ev"])))


if __name__ == "__main__":
    args = sys.argv[1:]
    keylog = None
    if args[:1] == ["--keylog"] and len(args) >= 2:
        keylog, args = args[1], args[2:]
    if not args:
        sys.exit(__doc__)
    main(args, keylog)
