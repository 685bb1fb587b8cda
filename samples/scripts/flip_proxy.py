#!/usr/bin/env python3
"""flip_proxy.py - a TCP proxy on loopback that damages one byte of the server's first record
after its ChangeCipherSpec (TLS 1.3: the encrypted EncryptedExtensions; TLS 1.2: the encrypted
Finished), so the real client meets a record that does not authenticate and answers with its
own alert (bad_record_mac), encrypted once it has keys.

  flip_proxy.py --listen 443 --to 4433 [--timeout 10]

One connection, bounded by --timeout seconds. The capture on the listening port sees what the
client really received and sent.
"""
import argparse
import select
import socket
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, default=443)
    ap.add_argument("--to", type=int, default=4433)
    ap.add_argument("--timeout", type=float, default=10)
    a = ap.parse_args()
    ls = socket.create_server(("127.0.0.1", a.listen))
    ls.settimeout(a.timeout)
    c, _ = ls.accept()
    s = socket.create_connection(("127.0.0.1", a.to), timeout=a.timeout)
    buf = b""          # server bytes not yet framed into whole records
    seen_ccs = False
    flipped = False
    end = time.time() + a.timeout
    open_ = {c: True, s: True}
    while time.time() < end and (open_[c] or open_[s]):
        r, _, _ = select.select([x for x in (c, s) if open_[x]], [], [], 0.2)
        for x in r:
            data = x.recv(65536)
            if not data:
                open_[x] = False
                try:
                    (s if x is c else c).shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            if x is c:
                s.sendall(data)
                continue
            if flipped:
                c.sendall(data)
                continue
            buf += data
            out = b""
            while len(buf) >= 5:
                n = 5 + int.from_bytes(buf[3:5], "big")
                if len(buf) < n:
                    break
                rec, buf = bytearray(buf[:n]), buf[n:]
                if rec[0] == 20:
                    seen_ccs = True
                elif seen_ccs and not flipped:
                    rec[-1] ^= 0x01
                    flipped = True
                out += bytes(rec)
            if flipped:
                out += buf
                buf = b""
            c.sendall(out)
    for x in (c, s, ls):
        x.close()


if __name__ == "__main__":
    main()
