#!/usr/bin/python3
"""A plain HTTP forward proxy on 127.0.0.1 for tests: it forwards GET and HEAD requests for
absolute http:// URLs (as apt sends them to a proxy) and writes one line per request to LOG:
the method, the URL and whether the request carried an Authorization header.

Usage: forwarding-proxy.py LOG    (prints the port it listens on, then serves until killed)
"""

import http.server
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request

LOG = sys.argv[1]
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "trailers",
       "transfer-encoding", "upgrade", "host"}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Handler(http.server.BaseHTTPRequestHandler):
  protocol_version = "HTTP/1.1"

  def log_message(self, *args):
    pass

  def _forward(self, head):
    url = urllib.parse.urlsplit(self.path)
    # apt names the credentials of a source in the URL it asks a proxy for (and may send them as
    # a header too): both count, and the URL is forwarded without them.
    auth = bool(self.headers.get("Authorization") or url.username)
    with open(LOG, "a") as log:
      log.write("%s %s auth=%s\n" % (self.command, url._replace(netloc=url.hostname or "").geturl(),
                                     "yes" if auth else "no"))
    if url.scheme != "http":
      self.send_error(400, "absolute http:// URLs only")
      return
    netloc = url.hostname + (":%d" % url.port if url.port else "")
    headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
    req = urllib.request.Request(url._replace(netloc=netloc).geturl(), headers=headers,
                                 method=self.command)
    try:
      resp = OPENER.open(req, timeout=120)
    except urllib.error.HTTPError as err:
      resp = err
    except OSError as err:
      self.send_error(502, str(err))
      return
    length = resp.headers.get("Content-Length")
    # Streamed when the length is known, else read whole to give one.
    body = None
    if not head and length is None:
      body = resp.read()
      length = str(len(body))
    self.send_response(resp.status if hasattr(resp, "status") else resp.code)
    for k, v in resp.headers.items():
      if k.lower() not in HOP and k.lower() != "content-length":
        self.send_header(k, v)
    if length is not None:
      self.send_header("Content-Length", length)
    self.end_headers()
    if head:
      return
    if body is not None:
      self.wfile.write(body)
    else:
      shutil.copyfileobj(resp, self.wfile, 1 << 20)

  def do_GET(self):
    self._forward(False)

  def do_HEAD(self):
    self._forward(True)


def main():
  server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  print(server.server_address[1], flush=True)
  server.serve_forever()


if __name__ == "__main__":
  main()
