#!/usr/bin/env python3
"""tls_py.py - small Python-ssl (OpenSSL via the `ssl` module) TLS client and server,
plus a "silent" TCP server, for tls_cases.sh.

  tls_py.py server --cert C --key K [--port 443] [--count 1] [--max 1.2] [--min 1.2]
                   [--require-cert --cafile CA]
  tls_py.py client --host 127.0.0.1 [--port 443] [--sni good.test] [--cafile CA | --no-verify]
                   [--max 1.2] [--min 1.2] [--ciphers STR] [--cert C --key K]
  tls_py.py silent [--port 443] [--hold 6]     accept TCP connections, never send a byte

Every run is bounded (socket timeouts, --count / --hold). With SSLKEYLOGFILE set in the
environment, client and server append their NSS key log there (as curl and GnuTLS do).
"""
import argparse
import os
import socket
import ssl
import sys
import threading
import time

VERSIONS = {"1.0": ssl.TLSVersion.TLSv1, "1.1": ssl.TLSVersion.TLSv1_1,
            "1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def set_versions(ctx, a):
    if a.min:
        ctx.minimum_version = VERSIONS[a.min]
    if a.max:
        ctx.maximum_version = VERSIONS[a.max]
    if a.ciphers:
        ctx.set_ciphers(a.ciphers)
    if os.environ.get("SSLKEYLOGFILE"):
        ctx.keylog_filename = os.environ["SSLKEYLOGFILE"]


def server(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    if a.require_cert:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(a.cafile)
    set_versions(ctx, a)
    ls = socket.create_server((a.bind, a.port), family=socket.AF_INET6 if ":" in a.bind else socket.AF_INET)
    ls.settimeout(a.timeout)
    for _ in range(a.count):
        try:
            raw, peer = ls.accept()
        except socket.timeout:
            print("server: no connection", flush=True)
            break
        raw.settimeout(a.timeout)
        try:
            with ctx.wrap_socket(raw, server_side=True) as s:
                print("server: %s %s %s" % (peer, s.version(), s.cipher()), flush=True)
                s.recv(4096)
                s.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 18\r\n\r\nhello from python\n")
                try:
                    s.unwrap()
                except (ssl.SSLError, OSError):
                    pass
        except (ssl.SSLError, OSError) as e:
            print("server: %s failed: %s" % (peer, e), flush=True)
    ls.close()


def client(a):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if a.no_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif a.cafile:
        ctx.load_verify_locations(a.cafile)
    if a.cert:
        ctx.load_cert_chain(a.cert, a.key)
    set_versions(ctx, a)
    raw = socket.create_connection((a.host, a.port), timeout=a.timeout)
    try:
        with ctx.wrap_socket(raw, server_hostname=a.sni) as s:
            print("client: %s %s" % (s.version(), s.cipher()), flush=True)
            s.sendall(b"GET / HTTP/1.0\r\nHost: %s\r\n\r\n" % a.sni.encode())
            data = b""
            while True:
                try:
                    chunk = s.recv(4096)
                except ssl.SSLZeroReturnError:
                    break
                if not chunk:
                    break
                data += chunk
            print("client: got %d bytes: %r" % (len(data), data[:60]), flush=True)
    except (ssl.SSLError, OSError) as e:
        print("client: failed: %s" % e, flush=True)
        return 1
    return 0


def silent(a):
    ls = socket.create_server((a.bind, a.port))
    ls.settimeout(a.hold)
    conns = []
    end = time.time() + a.hold
    while time.time() < end:
        try:
            ls.settimeout(max(0.1, end - time.time()))
            c, peer = ls.accept()
            print("silent: accepted %s, not answering" % (peer,), flush=True)
            conns.append(c)
        except socket.timeout:
            break
    for c in conns:
        c.close()
    ls.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["server", "client", "silent"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=443)
    p.add_argument("--cert")
    p.add_argument("--key")
    p.add_argument("--cafile")
    p.add_argument("--no-verify", action="store_true")
    p.add_argument("--require-cert", action="store_true", help="server: require a client certificate from --cafile")
    p.add_argument("--sni", default="good.test")
    p.add_argument("--min")
    p.add_argument("--max")
    p.add_argument("--ciphers")
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--timeout", type=float, default=8)
    p.add_argument("--hold", type=float, default=6)
    a = p.parse_args()
    if a.mode == "server":
        server(a)
    elif a.mode == "client":
        sys.exit(client(a))
    else:
        silent(a)


if __name__ == "__main__":
    main()
