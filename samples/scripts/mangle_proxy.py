#!/usr/bin/env python3
"""mangle_proxy.py - a TCP proxy on loopback that changes one plaintext handshake record of a real
TLS exchange, so that the real client or server meets a fault it answers with its own alert.
Only plaintext records are changed (a ClientHello, a ServerHello, a TLS 1.2 server flight), or
one byte of the server's first encrypted record: what the stacks then say is theirs.

  mangle_proxy.py MODE --listen 443 --to 4433 [--suite 0x1302] [--timeout 10]

MODE:
  ch-ext-len   the ClientHello's extensions length one more than the bytes it has: the server
               cannot parse it (decode_error)
  sh-suite     the ServerHello's cipher suite replaced by --suite, one the client did not offer
               (illegal_parameter)
  drop-ske     the TLS 1.2 ServerKeyExchange left out of the server's flight: the client meets a
               ServerHelloDone where it waits for the key exchange (unexpected_message)
  dup-sh       the ServerHello record sent twice: a TLS 1.3 client meets a plaintext handshake
               record where it waits for encrypted ones (unexpected_message)
  ske-sig      the last byte of the TLS 1.2 ServerKeyExchange (its signature) flipped
               (decrypt_error)
  ch-strip-versions  the ClientHello's supported_versions extension renamed (type 0xfa2b), so the
               server sees a TLS 1.2 hello from a TLS 1.3 client: the server's random then carries
               the downgrade sentinel and the client refuses it (illegal_parameter)
  flip-after-ccs  one byte of the server's first record after its ChangeCipherSpec flipped (TLS
               1.3: the encrypted EncryptedExtensions; TLS 1.2: the encrypted Finished): the
               record does not authenticate and the client answers with its own alert
               (bad_record_mac), encrypted once it has keys
  big-record   an application-data record of 18,000 bytes (over the 2^14 + 256 limit of an
               encrypted record) put after the ServerHello (record_overflow)

One connection, bounded by --timeout seconds. The capture on the listening port sees what the
client really sent and received.
"""
import argparse
import select
import socket
import time


def records(buf):
    """Whole records at the start of buf: (list of records, rest)."""
    out = []
    while len(buf) >= 5:
        n = 5 + int.from_bytes(buf[3:5], "big")
        if len(buf) < n:
            break
        out.append(bytearray(buf[:n]))
        buf = buf[n:]
    return out, buf


def messages(rec):
    """The handshake messages of one handshake record (None when one spans records)."""
    body, out = rec[5:], []
    while body:
        if len(body) < 4:
            return None
        n = 4 + int.from_bytes(body[1:4], "big")
        if len(body) < n:
            return None
        out.append(bytearray(body[:n]))
        body = body[n:]
    return out


def record(content_type, version, body):
    return bytes([content_type]) + bytes(version) + len(body).to_bytes(2, "big") + bytes(body)


def mangle_client(mode, rec):
    """The client's first handshake record (its ClientHello)."""
    if mode not in ("ch-ext-len", "ch-strip-versions") or rec[0] != 22 or rec[5] != 1:
        return None
    p = 5 + 4 + 2 + 32
    p += 1 + rec[p]                                   # session id
    p += 2 + int.from_bytes(rec[p:p + 2], "big")      # cipher suites
    p += 1 + rec[p]                                   # compression methods
    n = int.from_bytes(rec[p:p + 2], "big")
    if mode == "ch-ext-len":
        rec[p:p + 2] = (n + 1).to_bytes(2, "big")
        return bytes(rec)
    end, p = p + 2 + n, p + 2
    while p + 4 <= end:
        typ, ln = int.from_bytes(rec[p:p + 2], "big"), int.from_bytes(rec[p + 2:p + 4], "big")
        if typ == 0x002b:
            rec[p:p + 2] = (0xfa2b).to_bytes(2, "big")
            return bytes(rec)
        p += 4 + ln
    return None


def mangle_server(mode, rec, suite):
    """A plaintext record of the server before its ChangeCipherSpec; None leaves it as it is."""
    if rec[0] != 22:
        return None
    msgs = messages(rec)
    if msgs is None:
        return None
    version = rec[1:3]
    if mode == "sh-suite" and msgs[0][0] == 2:
        sh = msgs[0]
        p = 4 + 2 + 32
        p += 1 + sh[p]
        sh[p:p + 2] = suite.to_bytes(2, "big")
        return record(22, version, b"".join(msgs))
    if mode == "dup-sh" and msgs[0][0] == 2:
        return bytes(rec) + bytes(rec)
    if mode == "big-record" and msgs[0][0] == 2:
        return bytes(rec) + record(23, version, b"\x00" * 18000)
    if mode in ("drop-ske", "ske-sig") and any(m[0] == 12 for m in msgs):
        kept = []
        for m in msgs:
            if m[0] == 12 and mode == "drop-ske":
                continue
            if m[0] == 12:
                m[-1] ^= 0x01
            kept.append(m)
        return record(22, version, b"".join(kept))
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["ch-ext-len", "ch-strip-versions", "sh-suite", "drop-ske", "dup-sh", "ske-sig",
                                     "big-record", "flip-after-ccs"])
    ap.add_argument("--listen", type=int, default=443)
    ap.add_argument("--to", type=int, default=4433)
    ap.add_argument("--suite", type=lambda s: int(s, 0), default=0x1302)
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    ls = socket.create_server(("127.0.0.1", a.listen))
    ls.settimeout(a.timeout)
    c, _ = ls.accept()
    s = socket.create_connection(("127.0.0.1", a.to), timeout=a.timeout)
    pending = {c: b"", s: b""}   # bytes not yet framed into whole records, per sender
    done = {c: False, s: False}  # the sender's mangling is over: relay as it comes
    seen_ccs = {c: False, s: False}
    end = time.time() + a.timeout
    open_ = {c: True, s: True}
    while time.time() < end and (open_[c] or open_[s]):
        r, _, _ = select.select([x for x in (c, s) if open_[x]], [], [], 0.2)
        for x in r:
            peer = s if x is c else c
            data = x.recv(65536)
            if not data:
                open_[x] = False
                try:
                    peer.sendall(pending[x])
                    peer.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            if done[x]:
                peer.sendall(data)
                continue
            recs, pending[x] = records(pending[x] + data)
            out = b""
            for rec in recs:
                if done[x]:
                    out += bytes(rec)
                    continue
                if rec[0] == 20:               # ChangeCipherSpec: encrypted records follow
                    seen_ccs[x] = True
                    done[x] = a.mode != "flip-after-ccs" or x is c
                    out += bytes(rec)
                    continue
                if seen_ccs[x]:                # flip-after-ccs: the server's first sealed record
                    rec[-1] ^= 0x01
                    done[x] = True
                    print("mangled (flip-after-ccs) a record of the server", flush=True)
                    out += bytes(rec)
                    continue
                new = mangle_client(a.mode, rec) if x is c else mangle_server(a.mode, rec, a.suite)
                if new is not None:
                    done[x] = True
                    print(f"mangled ({a.mode}) a record of the {'client' if x is c else 'server'}", flush=True)
                out += new if new is not None else bytes(rec)
                if x is c and a.mode != "flip-after-ccs":
                    done[x] = True             # only the client's first record
            if done[x]:
                out += pending[x]
                pending[x] = b""
            peer.sendall(out)
    for x in (c, s, ls):
        x.close()


if __name__ == "__main__":
    main()
