"""Small loopback peers for transport tests: a TCP listener that counts connections
(and optionally never answers), a blackhole whose SYNs are never answered, and a
TLS server that records what the client offered."""
import socket
import ssl
import threading


class _Acceptor:
    """Accepts TCP connections on 127.0.0.1 in a thread and hands each to handle()."""

    def __init__(self, backlog=16):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(backlog)
        self.port = self.sock.getsockname()[1]
        self._stop = False
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            self.handle(conn)

    def handle(self, conn):
        raise NotImplementedError

    def close(self):
        self._stop = True
        self.thread.join()
        self.sock.close()


class CountingListener(_Acceptor):
    """Counts TCP connections and holds them open silently."""

    def __init__(self):
        self.connections = 0
        self.held = []
        super().__init__()

    def handle(self, conn):
        self.connections += 1
        self.held.append(conn)

    def close(self):
        super().close()
        for c in self.held:
            c.close()


class Blackhole:
    """A port whose accept queue is full and never drained: new SYNs get no answer."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port = self.sock.getsockname()[1]
        self.fillers = []
        for _ in range(3):  # fill the backlog so later SYNs are dropped
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(s)

    def close(self):
        for s in self.fillers:
            s.close()
        self.sock.close()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class RecordingTLSServer(_Acceptor):
    """TLS on 127.0.0.1 with the given cert; records ALPN offers and protocol versions."""

    def __init__(self, certfile, keyfile, max_version=None, alpn=("h2", "http/1.1")):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(certfile, keyfile)
        if max_version is not None:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
            ctx.minimum_version = ssl.TLSVersion.TLSv1
            ctx.maximum_version = max_version
        ctx.set_alpn_protocols(list(alpn))
        self.ctx = ctx
        self.handshakes = []
        self.errors = []
        super().__init__(backlog=8)

    def handle(self, conn):
        try:
            conn.settimeout(5)
            tls = self.ctx.wrap_socket(conn, server_side=True)
            self.handshakes.append((tls.version(), tls.selected_alpn_protocol()))
            tls.recv(65536)
            tls.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                        b"Connection: close\r\n\r\n")
            tls.close()
        except (ssl.SSLError, OSError) as e:
            self.errors.append(str(e))
            conn.close()


def self_signed_cert(directory):
    """A self-signed certificate for 127.0.0.1 (it is its own CA): (cert, key) paths."""
    import subprocess
    cert = f"{directory}/peer.crt"
    key = f"{directory}/peer.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj",
                    "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return cert, key
