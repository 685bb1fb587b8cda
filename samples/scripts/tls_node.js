#!/usr/bin/env node
// tls_node.js - small Node.js (node:tls, OpenSSL inside Node) TLS client and server for
// keylog_stacks.sh, each writing its NSS key log from the 'keylog' event to $SSLKEYLOGFILE
// (Node itself does not read that variable).
//
//   node tls_node.js server --cert C --key K [--port 443] [--count 1] [--min 1.2] [--max 1.3]
//                           [--require-cert --cafile CA]
//   node tls_node.js client [--host 127.0.0.1] [--port 443] [--sni good.test] [--cafile CA]
//                           [--min 1.2] [--max 1.3] [--cert C --key K]
//
// Every run is bounded: the server stops after --count connections or --timeout seconds, the
// client after --timeout seconds.
'use strict';
const tls = require('node:tls');
const fs = require('node:fs');

const VERSIONS = { '1.2': 'TLSv1.2', '1.3': 'TLSv1.3' };

function args(argv) {
    const a = { mode: argv[0], host: '127.0.0.1', port: 443, sni: 'good.test', count: 1, timeout: 8 };
    for (let i = 1; i < argv.length; i++) {
        const k = argv[i].replace(/^--/, '').replace(/-/g, '_');
        if (k === 'require_cert') { a.require_cert = true; continue; }
        a[k] = argv[++i];
    }
    a.port = Number(a.port);
    a.count = Number(a.count);
    a.timeout = Number(a.timeout);
    return a;
}

function versions(o, a) {
    if (a.min) o.minVersion = VERSIONS[a.min];
    if (a.max) o.maxVersion = VERSIONS[a.max];
    return o;
}

// One NSS key log line per 'keylog' event (the line ends with its newline).
function keylog(line) {
    if (process.env.SSLKEYLOGFILE) fs.appendFileSync(process.env.SSLKEYLOGFILE, line);
}

function server(a) {
    const o = versions({ cert: fs.readFileSync(a.cert), key: fs.readFileSync(a.key) }, a);
    if (a.require_cert) {
        o.requestCert = true;
        o.rejectUnauthorized = true;
        o.ca = fs.readFileSync(a.cafile);
    }
    let left = a.count;
    const srv = tls.createServer(o, (s) => {
        console.log(`server: ${s.remoteAddress}:${s.remotePort} ${s.getProtocol()} ${s.getCipher().name}`);
        s.once('data', () => s.end('HTTP/1.0 200 OK\r\nContent-Length: 16\r\n\r\nhello from node\n'));
        s.on('error', (e) => console.log(`server: connection error: ${e.message}`));
        s.on('close', done);
    });
    srv.on('keylog', (line) => keylog(line));
    srv.on('tlsClientError', (e) => { console.log(`server: failed: ${e.message}`); done(); });
    function done() { if (--left <= 0) srv.close(); }
    const t = setTimeout(() => { console.log('server: timeout'); process.exit(0); }, a.timeout * 1000);
    t.unref();
    srv.listen(a.port, '127.0.0.1');
}

function client(a) {
    const o = versions({ host: a.host, port: a.port, servername: a.sni }, a);
    if (a.cafile) o.ca = fs.readFileSync(a.cafile);
    if (a.cert) { o.cert = fs.readFileSync(a.cert); o.key = fs.readFileSync(a.key); }
    const s = tls.connect(o, () => {
        console.log(`client: ${s.getProtocol()} ${s.getCipher().name} authorized=${s.authorized}`);
        s.write(`GET / HTTP/1.0\r\nHost: ${a.sni}\r\n\r\n`);
    });
    s.on('keylog', (line) => keylog(line));
    let got = 0;
    s.on('data', (d) => { got += d.length; });
    s.on('end', () => console.log(`client: got ${got} bytes`));
    s.on('error', (e) => { console.log(`client: failed: ${e.code || ''} ${e.message}`); process.exitCode = 1; });
    s.on('close', () => process.exit());
    setTimeout(() => { console.log('client: timeout'); s.destroy(); process.exit(1); }, a.timeout * 1000).unref();
}

const a = args(process.argv.slice(2));
if (a.mode === 'server') server(a);
else if (a.mode === 'client') client(a);
else { console.error('usage: tls_node.js server|client ...'); process.exit(2); }
