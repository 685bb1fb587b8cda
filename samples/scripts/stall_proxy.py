#!/usr/bin/env python3
"""stall_proxy.py - a TCP proxy for one connection that forwards the client's bytes to the
server whole, and only the first N TLS records of the server's answer back; then it holds the
connection open (the server looks stalled mid-flight) until the client closes or --hold seconds
pass. Used by java_cases.sh (scenario "stall"): real stacks on both ends, only the server's
flight cut short.

Usage: stall_proxy.py LISTEN_PORT SERVER_PORT RECORDS [--hold SECONDS]
"""
import socket
import sys
import time
import select


def main():
    listen, upstream, keep = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    hold = float(sys.argv[5]) if len(sys.argv) > 5 and sys.argv[4] == "--hold" else 15.0
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", listen))
    ls.listen(1)
    ls.settimeout(30)
    c, _ = ls.accept()
    s = socket.create_connection(("127.0.0.1", upstream), timeout=5)
    buf, sent, passing = b"", 0, True
    end = time.time() + hold
    while time.time() < end:
        r, _, _ = select.select([c, s], [], [], 0.2)
        if c in r:
            d = c.recv(65536)
            if not d:
                break
            s.sendall(d)
        if s in r:
            d = s.recv(65536)
            if not d:
                s.close()
                r = []
                s = None
                break
            if passing:
                buf += d
                out = b""
                while sent < keep and len(buf) >= 5:
                    n = 5 + int.from_bytes(buf[3:5], "big")
                    if len(buf) < n:
                        break
                    out, buf = out + buf[:n], buf[n:]
                    sent += 1
                if out:
                    c.sendall(out)
                if sent >= keep:
                    passing = False
    c.close()
    if s is not None:
        s.close()


if __name__ == "__main__":
    main()
