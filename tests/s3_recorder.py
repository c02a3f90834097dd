"""A recording HTTP proxy on 127.0.0.1 in front of an S3 endpoint: every request it forwards is listed
as (method, path), so a test can assert what a run wrote to the object store."""

from __future__ import annotations

import http.client
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FORWARD_TIMEOUT = 30.0  # seconds a forwarded request may take


class S3Recorder:
    """``with S3Recorder(upstream) as rec:`` then point clients at ``rec.endpoint``; ``rec.requests``."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urlsplit(upstream)
        self.requests: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> S3Recorder:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(FORWARD_TIMEOUT)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        recorder = self

        class Forward(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                recorder.requests.append((self.command, self.path))
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                up = http.client.HTTPConnection(recorder.upstream.hostname, recorder.upstream.port,
                                                timeout=FORWARD_TIMEOUT)
                try:
                    up.request(self.command, self.path, body=body, headers=dict(self.headers))
                    reply = up.getresponse()
                    data = reply.read()
                    self.send_response(reply.status)
                    head = self.command == "HEAD"  # a HEAD answer keeps the object's length, without a body
                    for name, value in reply.getheaders():
                        if name.lower() not in ("transfer-encoding", "connection") and (
                                head or name.lower() != "content-length"):
                            self.send_header(name, value)
                    if not head:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    up.close()

            do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _forward

        return Forward
