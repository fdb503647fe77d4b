"""HTTPS transport: request bodies (chunked too), fault injection on the way out, access log."""
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import wire
from api import MAX_BODY, Reply, Request, json_reply
from faults import fault_body

BLOCK = 64 * 1024
CONNECTION_TIMEOUT = 120


class BodyTooLarge(Exception):
    pass


class TLSServer(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops SYNs when 50 logins connect at once (the
    # client retries after 1 s, past connect_timeout); kube-apiserver uses somaxconn.
    request_queue_size = 1024

    def __init__(self, address, ssl_context, app):
        self.ssl_context = ssl_context
        self.app = app
        self.log_lock = threading.Lock()
        super().__init__(address, Handler)

    def finish_request(self, request, client_address):
        # The handshake runs in the connection's thread, so a silent client cannot block accept().
        request.settimeout(CONNECTION_TIMEOUT)
        # Headers and body go out in separate writes: without this, Nagle and delayed ACK
        # hold every reply ~40 ms, which a Go server does not.
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = self.ssl_context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            Handler(conn, client_address, self)
        finally:
            conn.close()

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (OSError, ssl.SSLError)):
            traceback.print_exc()

    def access_log(self, line):
        with self.log_lock, open(self.app.log_path, "a") as log:
            log.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_request(self, code="-", size="-"):
        pass  # access_log() writes our own line

    def log_message(self, format, *args):  # noqa: A002 (BaseHTTPRequestHandler's signature)
        self.server.access_log("error: " + format % args)

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    # --- request ------------------------------------------------------------------------------

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts, total = [], 0
            while True:
                size = int(self.rfile.readline(1024).split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(parts)
                total += size
                if total > MAX_BODY:
                    raise BodyTooLarge()
                parts.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise BodyTooLarge()
        return self.rfile.read(length) if length else b""

    def _serve(self):
        app = self.server.app
        split = urlsplit(self.path)
        headers = {name.lower(): value for name, value in self.headers.items()}
        req = Request(self.command, split.path, parse_qs(split.query, keep_blank_values=True), headers,
                      peer_cert=self.connection.getpeercert() or None)
        try:
            req.body = self._read_body()
        except (BodyTooLarge, ValueError):
            self.close_connection = True
            return self._finish(req, self._reply_error(wire.too_large(MAX_BODY)))
        if split.path.startswith("/_test/"):
            return self._finish(req, app.control.handle(req))
        app.recorder.record(req, split.query)
        fault = app.faults.take(split.path)
        if fault is None:
            return self._finish(req, self._api(req))
        self._finish(req, self._faulty(req, fault), fault)

    def _api(self, req):
        try:
            return self.server.app.api.handle(req)
        except Exception:  # a bug here must still answer like an apiserver would
            traceback.print_exc()
            return self._reply_error(wire.internal_error("test apiserver failure"))

    def _reply_error(self, error):
        return json_reply(error.code, error.status(), False, error.headers)

    def _faulty(self, req, fault):
        """The reply for a fault rule: replaced outright when it sets a status or redirect."""
        time.sleep(fault.get("latency_ms", 0) / 1000)
        if fault.get("status") is None and fault.get("redirect") is None:
            reply = self._api(req)
        else:
            status = fault.get("status") or 302
            reply = Reply(status, b"" if fault.get("redirect") else wire.go_json(wire.status_for_code(status)),
                          {"Content-Type": "application/json"})
            if fault.get("redirect"):
                reply.headers["Location"] = fault["redirect"]
        reply.headers.update(fault.get("headers") or {})
        if fault.get("content_type"):
            reply.headers["Content-Type"] = fault["content_type"]
        body = fault_body(fault)
        if body is not None:
            reply.body = body
        return reply

    # --- response -----------------------------------------------------------------------------

    def _finish(self, req, reply, fault=None):
        fault = fault or {}
        agent = req.headers.get("user-agent", "-")
        self.server.access_log(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {req.method} {req.path} "
                               f"{reply.status} {agent!r}")
        try:
            if fault.get("close_without_response"):
                self._drop(reset=False)
            elif fault.get("reset") == "before_response":
                self._drop(reset=True)
            else:
                self._write(reply, fault)
        except (OSError, ssl.SSLError):
            self.close_connection = True

    def _drop(self, reset):
        if reset:
            # SO_LINGER 0: close() sends RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _pieces(self, reply, fault):
        """(total length, iterator of body pieces); body_size streams filler without buffering."""
        size = fault.get("body_size")
        if size is None:
            body = reply.body
            return len(body), (body[i:i + BLOCK] for i in range(0, len(body), BLOCK))
        prefix = fault_body(fault) or b""

        def generate():
            left = size
            head = prefix[:size]
            if head:
                yield head
                left -= len(head)
            filler = b"x" * BLOCK
            while left > 0:
                yield filler[:min(BLOCK, left)]
                left -= BLOCK
        return size, generate()

    def _write(self, reply, fault):
        chunked, bps = fault.get("chunked", False), fault.get("trickle_bps")
        length, pieces = self._pieces(reply, fault)
        if bps:
            pieces = _trickle(pieces, bps)
        self.send_response_only(reply.status)
        self.send_header("Date", self.date_time_string())
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding" if chunked else "Content-Length",
                         "chunked" if chunked else str(length))
        self.end_headers()
        stop_at = length // 2 if fault.get("reset") == "mid_body" else None
        sent = 0
        for piece in pieces:
            if stop_at is not None and sent + len(piece) > stop_at:
                piece = piece[:stop_at - sent]
            if piece:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
            if stop_at is not None and sent >= stop_at:
                return self._drop(reset=True)
        if stop_at is not None:
            return self._drop(reset=True)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")


def _trickle(pieces, bps):
    """Re-slices the body so that about bps bytes leave per second."""
    step = max(1, int(bps) // 10)
    for piece in pieces:
        for i in range(0, len(piece), step):
            yield piece[i:i + step]
            time.sleep(step / bps)
