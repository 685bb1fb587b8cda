// tls_go.go - small Go crypto/tls client and server for keylog_stacks.sh, each writing its NSS
// key log through tls.Config.KeyLogWriter (Go does not read SSLKEYLOGFILE itself).
//
//	go build -o $WORK/tls_go samples/scripts/tls_go.go   (GOCACHE/GOPATH outside the repo)
//	tls_go -mode server -cert C -key K [-addr 127.0.0.1:443] [-count 1] [-min 1.2] [-max 1.3]
//	       [-clientauth require|optional -ca CA] [-ciphers LIST] [-curves LIST] [-alpn LIST] [-keylog FILE]
//	tls_go -mode client [-addr 127.0.0.1:443] [-sni good.test] [-ca CA] [-min 1.2] [-max 1.3]
//	       [-cert C -key K] [-ciphers LIST] [-curves LIST] [-alpn LIST] [-resume] [-keylog FILE]
//
// -sni with an IP address: Go sends no SNI and checks the address against the certificate's IP
// SANs. -alpn: comma-separated protocols (Go's server refuses a client whose ALPN offer has
// none of them with no_application_protocol).
// -ciphers: IANA names (TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,...); Go applies them to TLS 1.2
// only (its TLS 1.3 suites are fixed). -curves: X25519,P256,P384,P521 (TLS 1.2 and 1.3).
// The client sends an HTTP/1.0 GET and reads the answer; -resume makes a second connection
// resuming the first one's session (a shared client session cache).
// Every run is bounded: the server stops after -count connections or -timeout, the client
// after -timeout.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

var versions = map[string]uint16{"1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13}
var curves = map[string]tls.CurveID{"X25519": tls.X25519, "P256": tls.CurveP256, "P384": tls.CurveP384, "P521": tls.CurveP521}

func versionName(v uint16) string {
	for n, id := range versions {
		if id == v {
			return "TLS " + n
		}
	}
	return fmt.Sprintf("0x%04x", v)
}

func fail(format string, a ...interface{}) {
	fmt.Printf(format+"\n", a...)
	os.Exit(1)
}

func pool(file string) *x509.CertPool {
	b, err := os.ReadFile(file)
	if err != nil {
		fail("cannot read %s: %v", file, err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		fail("no certificate in %s", file)
	}
	return p
}

func config(min, max, ciphers, curveList, alpn, cert, key, keylog string) *tls.Config {
	c := &tls.Config{}
	if alpn != "" {
		c.NextProtos = strings.Split(alpn, ",")
	}
	if min != "" {
		c.MinVersion = versions[min]
	}
	if max != "" {
		c.MaxVersion = versions[max]
	}
	if ciphers != "" {
		byName := map[string]uint16{}
		for _, s := range tls.CipherSuites() {
			byName[s.Name] = s.ID
		}
		for _, s := range tls.InsecureCipherSuites() {
			byName[s.Name] = s.ID
		}
		for _, n := range strings.Split(ciphers, ",") {
			id, ok := byName[n]
			if !ok {
				fail("unknown cipher suite %s", n)
			}
			c.CipherSuites = append(c.CipherSuites, id)
		}
	}
	if curveList != "" {
		for _, n := range strings.Split(curveList, ",") {
			id, ok := curves[n]
			if !ok {
				fail("unknown curve %s", n)
			}
			c.CurvePreferences = append(c.CurvePreferences, id)
		}
	}
	if cert != "" {
		kp, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			fail("cannot load %s: %v", cert, err)
		}
		c.Certificates = []tls.Certificate{kp}
	}
	if keylog != "" {
		f, err := os.OpenFile(keylog, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			fail("cannot open %s: %v", keylog, err)
		}
		c.KeyLogWriter = f
	}
	return c
}

func serve(c *tls.Config, addr string, count int, timeout time.Duration) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fail("server: listen: %v", err)
	}
	deadline := time.Now().Add(timeout)
	ln.(*net.TCPListener).SetDeadline(deadline)
	for i := 0; i < count; i++ {
		raw, err := ln.Accept()
		if err != nil {
			fmt.Printf("server: no connection: %v\n", err)
			return
		}
		raw.SetDeadline(time.Now().Add(timeout))
		s := tls.Server(raw, c)
		if err := s.Handshake(); err != nil {
			fmt.Printf("server: handshake failed: %v\n", err)
			s.Close()
			continue
		}
		st := s.ConnectionState()
		fmt.Printf("server: %s %s %s client certs=%d\n", raw.RemoteAddr(), versionName(st.Version), tls.CipherSuiteName(st.CipherSuite), len(st.PeerCertificates))
		buf := make([]byte, 4096)
		if _, err := s.Read(buf); err != nil {
			fmt.Printf("server: read: %v\n", err)
		} else {
			io.WriteString(s, "HTTP/1.0 200 OK\r\nContent-Length: 14\r\n\r\nhello from go\n")
		}
		s.Close()
	}
}

func get(c *tls.Config, addr, sni string, timeout time.Duration) error {
	d := &net.Dialer{Timeout: timeout}
	s, err := tls.DialWithDialer(d, "tcp", addr, c)
	if err != nil {
		return err
	}
	defer s.Close()
	s.SetDeadline(time.Now().Add(timeout))
	st := s.ConnectionState()
	fmt.Printf("client: %s %s resumed=%v\n", versionName(st.Version), tls.CipherSuiteName(st.CipherSuite), st.DidResume)
	if _, err := fmt.Fprintf(s, "GET / HTTP/1.0\r\nHost: %s\r\n\r\n", sni); err != nil {
		return err
	}
	b, err := io.ReadAll(s)
	first := strings.SplitN(string(b), "\r\n", 2)[0]
	fmt.Printf("client: got %d bytes: %q\n", len(b), first)
	return err
}

func main() {
	mode := flag.String("mode", "client", "client | server")
	addr := flag.String("addr", "127.0.0.1:443", "address to listen on / connect to")
	sni := flag.String("sni", "good.test", "client: server name (SNI and name check)")
	ca := flag.String("ca", "", "client: trusted CA file; server: CA for client certificates")
	cert := flag.String("cert", "", "certificate (PEM)")
	key := flag.String("key", "", "private key (PEM)")
	min := flag.String("min", "", "lowest TLS version: 1.0 1.1 1.2 1.3")
	max := flag.String("max", "", "highest TLS version")
	keylog := flag.String("keylog", "", "NSS key log file (appended)")
	clientAuth := flag.String("clientauth", "none", "server: none | optional | require (client certificate, verified against -ca)")
	ciphers := flag.String("ciphers", "", "comma-separated cipher suite names (TLS 1.2)")
	curveList := flag.String("curves", "", "comma-separated curves: X25519,P256,P384,P521")
	alpn := flag.String("alpn", "", "comma-separated ALPN protocols")
	count := flag.Int("count", 1, "server: connections to serve")
	resume := flag.Bool("resume", false, "client: a second connection resuming the first one's session")
	timeout := flag.Duration("timeout", 8*time.Second, "bound on the whole run per connection")
	flag.Parse()

	c := config(*min, *max, *ciphers, *curveList, *alpn, *cert, *key, *keylog)
	switch *mode {
	case "server":
		switch *clientAuth {
		case "require":
			c.ClientAuth = tls.RequireAndVerifyClientCert
		case "optional":
			c.ClientAuth = tls.VerifyClientCertIfGiven
		}
		if *ca != "" {
			c.ClientCAs = pool(*ca)
		}
		serve(c, *addr, *count, *timeout)
	case "client":
		c.ServerName = *sni
		if *ca != "" {
			c.RootCAs = pool(*ca)
		}
		n := 1
		if *resume {
			c.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			n = 2
		}
		for i := 0; i < n; i++ {
			if err := get(c, *addr, *sni, *timeout); err != nil {
				fail("client: failed: %v", err)
			}
		}
	default:
		fail("unknown mode %s", *mode)
	}
}
