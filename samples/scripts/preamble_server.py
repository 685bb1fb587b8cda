#!/usr/bin/env python3
"""preamble_server.py - small servers that speak a plaintext preamble before TLS, for the samples
made by starttls_cases.sh (run inside a network namespace).

  preamble_server.py MODE PORT CERT KEY [--refuse] [--count N] [--timeout S]

MODE: smtp imap pop3 ftp xmpp ldap postgres (STARTTLS-style: the go-ahead, then a TLS server
with CERT/KEY through Python's ssl module), connect (HTTP CONNECT proxy) and socks5 (SOCKS5
proxy), both relaying to 127.0.0.1:<requested port>, and banner (a server that speaks first and
waits for a client that never answers). --refuse answers the upgrade or tunnel request with a
refusal. Serves N connections one after the other (default 1); every wait is bounded.
"""
import argparse
import select
import socket
import ssl
import sys
import time

p = argparse.ArgumentParser()
p.add_argument("mode")
p.add_argument("port", type=int)
p.add_argument("cert")
p.add_argument("key")
p.add_argument("--refuse", action="store_true")
p.add_argument("--count", type=int, default=1)
p.add_argument("--timeout", type=float, default=20.0)
a = p.parse_args()

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(a.cert, a.key)


def log(*x):
    print(*x, flush=True)


def read_line(c, buf):
    """One line (with its CRLF) from c, buf holding what was read after it; (b'', buf) at EOF."""
    while b"\n" not in buf:
        d = c.recv(4096)
        if not d:
            return b"", buf
        buf += d
    i = buf.index(b"\n") + 1
    return buf[:i], buf[i:]


def read_until(c, buf, marker, limit=65536):
    while marker not in buf and len(buf) < limit:
        d = c.recv(4096)
        if not d:
            break
        buf += d
    return buf


def read_exact(c, n):
    b = b""
    while len(b) < n:
        d = c.recv(n - len(b))
        if not d:
            break
        b += d
    return b


def tls(c):
    """The TLS server after the go-ahead: handshake, then read until the client closes."""
    t = ctx.wrap_socket(c, server_side=True)
    log("TLS", t.version(), t.cipher()[0])
    try:
        while t.recv(4096):
            pass
    except (ssl.SSLError, OSError) as e:
        log("after handshake:", e)
    try:
        t.close()
    except OSError:
        pass


def text_server(c, greeting, handle):
    """A line-based server: greeting, then handle(line) -> (reply, action) per line."""
    c.sendall(greeting)
    buf = b""
    while True:
        line, buf = read_line(c, buf)
        if not line:
            return
        log("C:", line)
        reply, action = handle(line.rstrip(b"\r\n"))
        if reply:
            c.sendall(reply)
        if action == "tls":
            tls(c)
            return
        if action == "close":
            return


def smtp(line):
    u = line.upper()
    if u.startswith(b"EHLO") or u.startswith(b"HELO"):
        return b"250-server.tlsdiag.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 STARTTLS\r\n", None
    if u == b"STARTTLS":
        if a.refuse:
            return b"454 4.7.0 TLS not available due to local problem\r\n", None
        return b"220 2.0.0 Ready to start TLS\r\n", "tls"
    if u == b"QUIT":
        return b"221 2.0.0 Bye\r\n", "close"
    return b"250 2.0.0 OK\r\n", None


def imap(line):
    tag, _, cmd = line.partition(b" ")
    u = cmd.upper()
    if u == b"CAPABILITY":
        return b"* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n" + tag + b" OK CAPABILITY completed\r\n", None
    if u == b"STARTTLS":
        if a.refuse:
            return tag + b" NO [UNAVAILABLE] TLS not available\r\n", None
        return tag + b" OK Begin TLS negotiation now\r\n", "tls"
    if u == b"LOGOUT":
        return b"* BYE logging out\r\n" + tag + b" OK LOGOUT completed\r\n", "close"
    return tag + b" BAD unknown command\r\n", None


def pop3(line):
    u = line.upper()
    if u == b"CAPA":
        return b"+OK Capability list follows\r\nSTLS\r\nUSER\r\n.\r\n", None
    if u == b"STLS":
        if a.refuse:
            return b"-ERR TLS not available\r\n", None
        return b"+OK Begin TLS negotiation\r\n", "tls"
    if u == b"QUIT":
        return b"+OK bye\r\n", "close"
    return b"-ERR unknown command\r\n", None


def ftp(line):
    u = line.upper()
    if u in (b"AUTH TLS", b"AUTH SSL"):
        if a.refuse:
            return b"534 TLS not available\r\n", None
        return b"234 AUTH TLS successful\r\n", "tls"
    if u == b"FEAT":
        return b"211-Features:\r\n AUTH TLS\r\n PBSZ\r\n211 End\r\n", None
    if u == b"QUIT":
        return b"221 Goodbye\r\n", "close"
    return b"530 Please login with USER and PASS\r\n", None


def xmpp(c):
    buf = read_until(c, b"", b">")
    buf = read_until(c, buf, b"version", 4096)
    log("C:", buf)
    c.sendall(
        b"<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
        b" id='h18b' from='server.tlsdiag.test' version='1.0'><stream:features>"
        b"<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
    )
    buf = read_until(c, b"", b"/>")
    log("C:", buf)
    if a.refuse:
        c.sendall(b"<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/></stream:stream>")
        return
    c.sendall(b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
    tls(c)


def ldap(c):
    hdr = read_exact(c, 2)
    if len(hdr) < 2 or hdr[1] & 0x80:
        return
    msg = read_exact(c, hdr[1])
    log("C:", (hdr + msg).hex())
    msg_id = msg[2] if len(msg) > 2 else 1
    rc = 2 if a.refuse else 0  # protocolError when refused
    body = bytes([0x0A, 1, rc, 0x04, 0, 0x04, 0])
    op = bytes([0x78, len(body)]) + body
    inner = bytes([0x02, 1, msg_id]) + op
    c.sendall(bytes([0x30, len(inner)]) + inner)
    if not a.refuse:
        tls(c)


def postgres(c):
    req = read_exact(c, 8)
    log("C:", req.hex())
    if a.refuse:
        c.sendall(b"N")
        return
    c.sendall(b"S")
    tls(c)


def relay(c, port):
    up = socket.create_connection(("127.0.0.1", port), timeout=5)
    end = time.time() + a.timeout
    socks = [c, up]
    while time.time() < end:
        r, _, _ = select.select(socks, [], [], 1.0)
        for s in r:
            d = s.recv(65536)
            if not d:
                up.close()
                return
            (up if s is c else c).sendall(d)
    up.close()


def connect(c):
    req = read_until(c, b"", b"\r\n\r\n")
    log("C:", req)
    target = req.split(b" ")[1] if req.count(b" ") >= 1 else b""
    port = int(target.rsplit(b":", 1)[-1] or b"443")
    if a.refuse:
        c.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        return
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    relay(c, port)


def socks5(c):
    greet = read_exact(c, 2)
    read_exact(c, greet[1] if len(greet) == 2 else 0)
    c.sendall(b"\x05\x00")
    head = read_exact(c, 4)
    if len(head) < 4:
        return
    if head[3] == 1:
        read_exact(c, 4)
    elif head[3] == 3:
        read_exact(c, read_exact(c, 1)[0])
    elif head[3] == 4:
        read_exact(c, 16)
    port = int.from_bytes(read_exact(c, 2), "big")
    if a.refuse:
        c.sendall(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")  # connection not allowed by ruleset
        return
    c.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
    relay(c, port)


def banner(c):
    c.sendall(b"220 tlsdiag-sample ESMTP ready\r\n")
    end = time.time() + a.timeout
    while time.time() < end:
        r, _, _ = select.select([c], [], [], 1.0)
        if r and not c.recv(4096):
            return


HANDLERS = {
    "smtp": lambda c: text_server(c, b"220 server.tlsdiag.test ESMTP tlsdiag-sample\r\n", smtp),
    "imap": lambda c: text_server(c, b"* OK [CAPABILITY IMAP4rev1 STARTTLS] tlsdiag-sample ready\r\n", imap),
    "pop3": lambda c: text_server(c, b"+OK tlsdiag-sample POP3 ready\r\n", pop3),
    "ftp": lambda c: text_server(c, b"220 tlsdiag-sample FTP ready\r\n", ftp),
    "xmpp": xmpp,
    "ldap": ldap,
    "postgres": postgres,
    "connect": connect,
    "socks5": socks5,
    "banner": banner,
}

ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("0.0.0.0", a.port))
ls.listen(8)
ls.settimeout(a.timeout)
for _ in range(a.count):
    try:
        conn, peer = ls.accept()
    except socket.timeout:
        log("no client")
        sys.exit(1)
    conn.settimeout(a.timeout)
    log("connection from", peer)
    try:
        HANDLERS[a.mode](conn)
    except (OSError, ssl.SSLError, IndexError, ValueError) as e:
        log("error:", e)
    try:
        conn.close()
    except OSError:
        pass
ls.close()
