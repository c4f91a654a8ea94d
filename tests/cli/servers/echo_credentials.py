"""An MCP endpoint that rejects every request with an error echoing the credentials it got.

It stands for the real servers that print what they were sent when they refuse it ("invalid
token abc123 for /mcp?key=..."). Each POST gets a JSON-RPC error (HTTP 200) whose message
holds the token after the auth scheme, the whole Authorization header and the request path
with its query; a path whose query ends in ``status=401`` gets an HTTP 401 with the same text.
It prints its port on the first line of stdout, and exits when stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length) or b"{}")
        auth = self.headers.get("Authorization", "")
        token = auth.partition(" ")[2]
        message = f"token {token} rejected (Authorization: {auth}) for {self.path}"
        if self.path.endswith("status=401"):
            self.send_response(401)
            self.end_headers()
            self.wfile.write(message.encode())
            return
        request_id = body.get("id") if isinstance(body, dict) else None
        reply = {"jsonrpc": "2.0", "id": request_id, "error": {"code": -32001, "message": message}}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.send_response(405)
        self.end_headers()

    do_DELETE = do_GET


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(server.server_address[1], flush=True)
    sys.stdin.read()
    server.shutdown()


if __name__ == "__main__":
    main()
