// JTls.java - a small Java (JSSE) TLS client and server for the samples (samples/scripts/java_cases.sh).
//
//   java -cp DIR JTls client [--host good.test] [--port 443] [--proto TLSv1.3,TLSv1.2] [--trust T.p12]
//                            [--https] [--keystore K.p12] [--ciphers A,B]
//   java -cp DIR JTls server [--port 443] --keystore K.p12 [--proto ...] [--trust T.p12]
//                            [--need-client-auth] [--ciphers A,B] [--count 1]
//
// The client connects to 127.0.0.1 and layers TLS over that socket for --host (SNI = --host);
// --https turns on endpoint identification (the name check real HTTPS clients do). It sends one
// HTTP/1.0 GET and reads the answer. The server answers each request with HTTP 200 and closes.
// Keystores/truststores are PKCS12 with the password "changeit". Every socket read times out
// after 5 s; the server stops after --count connections.
import java.io.FileInputStream;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import javax.net.ssl.KeyManager;
import javax.net.ssl.KeyManagerFactory;
import javax.net.ssl.SSLContext;
import javax.net.ssl.SSLParameters;
import javax.net.ssl.SSLServerSocket;
import javax.net.ssl.SSLSocket;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;

public final class JTls {
    private static final char[] PW = "changeit".toCharArray();

    private String host = "good.test";
    private int port = 443;
    private String[] protos;
    private String trust;
    private String keystore;
    private String[] ciphers;
    private boolean https;
    private boolean needClientAuth;
    private int count = 1;

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: JTls client|server [options]");
            System.exit(2);
        }
        JTls t = new JTls();
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            switch (a) {
                case "--host": t.host = args[++i]; break;
                case "--port": t.port = Integer.parseInt(args[++i]); break;
                case "--proto": t.protos = args[++i].split(","); break;
                case "--trust": t.trust = args[++i]; break;
                case "--keystore": t.keystore = args[++i]; break;
                case "--ciphers": t.ciphers = args[++i].split(","); break;
                case "--https": t.https = true; break;
                case "--need-client-auth": t.needClientAuth = true; break;
                case "--count": t.count = Integer.parseInt(args[++i]); break;
                default:
                    System.err.println("unknown option " + a);
                    System.exit(2);
            }
        }
        int rc = "server".equals(args[0]) ? t.server() : t.client();
        System.exit(rc);
    }

    private SSLContext context() throws Exception {
        KeyManager[] km = null;
        TrustManager[] tm = null;
        if (keystore != null) {
            KeyStore ks = KeyStore.getInstance("PKCS12");
            try (InputStream in = new FileInputStream(keystore)) {
                ks.load(in, PW);
            }
            KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
            kmf.init(ks, PW);
            km = kmf.getKeyManagers();
        }
        if (trust != null) {
            KeyStore ts = KeyStore.getInstance("PKCS12");
            try (InputStream in = new FileInputStream(trust)) {
                ts.load(in, PW);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(ts);
            tm = tmf.getTrustManagers();
        }
        SSLContext ctx = SSLContext.getInstance("TLS");
        ctx.init(km, tm, null);
        return ctx;
    }

    private void apply(SSLParameters p) {
        if (protos != null) {
            p.setProtocols(protos);
        }
        if (ciphers != null) {
            p.setCipherSuites(ciphers);
        }
    }

    private int client() throws Exception {
        SSLContext ctx = context();
        Socket raw = new Socket();
        raw.connect(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), port), 5000);
        raw.setSoTimeout(5000);
        try (SSLSocket s = (SSLSocket) ctx.getSocketFactory().createSocket(raw, host, port, true)) {
            SSLParameters p = s.getSSLParameters();
            apply(p);
            if (https) {
                p.setEndpointIdentificationAlgorithm("HTTPS");
            }
            s.setSSLParameters(p);
            s.startHandshake();
            System.out.println("handshake done: " + s.getSession().getProtocol() + " " + s.getSession().getCipherSuite());
            OutputStream out = s.getOutputStream();
            out.write(("GET / HTTP/1.0\r\nHost: " + host + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            out.flush();
            InputStream in = s.getInputStream();
            byte[] buf = new byte[4096];
            int total = 0;
            int n;
            while (total < 1 << 20 && (n = in.read(buf)) > 0) {
                System.out.print(new String(buf, 0, n, StandardCharsets.ISO_8859_1));
                total += n;
            }
            System.out.println();
            System.out.println("read " + total + " bytes");
            return 0;
        } catch (Exception e) {
            System.out.println("client error: " + e);
            return 1;
        }
    }

    private int server() throws Exception {
        SSLContext ctx = context();
        SSLServerSocket ss = (SSLServerSocket) ctx.getServerSocketFactory().createServerSocket();
        ss.setReuseAddress(true);
        ss.bind(new InetSocketAddress(InetAddress.getByName("127.0.0.1"), port));
        SSLParameters p = ss.getSSLParameters();
        apply(p);
        p.setNeedClientAuth(needClientAuth);
        ss.setSSLParameters(p);
        System.out.println("listening on 127.0.0.1:" + port);
        System.out.flush();
        int bad = 0;
        for (int i = 0; i < count; i++) {
            try (SSLSocket s = (SSLSocket) ss.accept()) {
                s.setSoTimeout(5000);
                s.startHandshake();
                System.out.println("handshake done: " + s.getSession().getProtocol() + " " + s.getSession().getCipherSuite());
                InputStream in = s.getInputStream();
                StringBuilder req = new StringBuilder();
                int c;
                while (req.length() < 8192 && (c = in.read()) >= 0) {
                    req.append((char) c);
                    if (req.toString().endsWith("\r\n\r\n")) {
                        break;
                    }
                }
                OutputStream out = s.getOutputStream();
                out.write("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 15\r\n\r\nhello from jv\r\n"
                        .getBytes(StandardCharsets.US_ASCII));
                out.flush();
            } catch (Exception e) {
                System.out.println("server error: " + e);
                bad++;
            }
        }
        ss.close();
        return bad == 0 ? 0 : 1;
    }
}
