#!/usr/bin/env python3
"""A TLS-terminating HTTP/1.1 proxy that injects faults between acme-agent and Pebble.

Pebble 2.4 cannot answer 503, 429, Retry-After, oversized or malformed bodies, foreign
URLs, a key inside a chain, or ARI. This proxy sits in front of it and can. See
tests/tools/README.md for the control file.

    fault_proxy.py --listen 127.0.0.1:0 --upstream https://127.0.0.1:PEBBLE_PORT \
        --upstream-ca PEBBLE_CA_FILE --cert CERT --key KEY --control FILE [--log FILE] \
        [--max-seconds 600]

Prints exactly one line on stdout once it accepts connections:
    ready https://127.0.0.1:PORT
and nothing else. Every request and every fault is logged as one JSON object per line.

Requests go to the upstream with the client's Host header unchanged: Pebble builds every
URL it hands out (directory, Location, Link, order/authz bodies) from the Host header and
checks the JWS "url" against it, so the agent sees one origin -- the proxy's -- and no
URL needs rewriting.

Standard library only (Debian 12's python3).
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import socket
import socketserver
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

HOP_BY_HOP = {
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
    "trailer", "transfer-encoding", "upgrade", "content-length",
}
MAX_REQUEST_BODY = 1 << 20
LOG_BODY_LIMIT = 4096
# A PKCS#8 Ed25519 key whose secret is 32 zero bytes: the shape of a leaked key, no secret.
DUMMY_PRIVATE_KEY = (
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"
    "-----END PRIVATE KEY-----\n"
)
ACTIONS = {
    "status", "reset", "trickle", "oversize", "garbage_json", "drop_nonce", "offorigin",
    "chain_private_key", "retry_after_garbage", "ari", "pass",
    # --- production-CA emulation (issue #21): see ca_emulation() below ---
    "replace_after", "stall", "processing",
}

# --- proc helper (issue 14 item 8): json_set --------------------------------------------
# {"action": "json_set", "set": {FIELD: VALUE, ...}, "nest": {"field": F, "depth": N}}:
# the upstream's JSON answer with each FIELD replaced by VALUE and F by N nested empty
# arrays ([[[...]]], built as text: Python's json cannot write that deep).
ACTIONS |= {"json_set"}


def json_set(data, rule):
    doc = json.loads(data)
    for k, v in rule.get("set", {}).items():
        doc[k] = v
    nest = rule.get("nest")
    if not nest:
        return json.dumps(doc, indent=3).encode()
    doc[nest["field"]] = "@@nest@@"
    depth = int(nest["depth"])
    return json.dumps(doc).replace('"@@nest@@"', "[" * depth + "]" * depth).encode()
# --- end proc helper --------------------------------------------------------------------


class Log:
    """One JSON object per line, appended, flushed at once; thread-safe."""

    def __init__(self, path):
        self._lock = threading.Lock()
        self._f = open(path, "a", encoding="utf-8")

    def write(self, event, **fields):
        rec = {"t": round(time.time(), 3), "event": event}
        rec.update(fields)
        line = json.dumps(rec, sort_keys=False) + "\n"
        with self._lock:
            self._f.write(line)
            self._f.flush()


class Control:
    """The JSON control file, re-read on every request. `times` counters live in memory,
    keyed by the rule's position and content; they are cleared whenever the file's
    content changes (bump a top-level "generation" to reset identical rules)."""

    def __init__(self, path, log):
        self.path = path
        self.log = log
        self._lock = threading.Lock()
        self._content = None
        self._fired = {}

    def _load(self):
        try:
            with open(self.path, "rb") as f:
                raw = f.read(1 << 20)
        except FileNotFoundError:
            raw = b""
        except OSError as e:
            self.log.write("control_error", error=str(e))
            raw = b""
        if raw != self._content:
            self._content = raw
            self._fired = {}
        if not raw.strip():
            return []
        try:
            doc = json.loads(raw)
        except ValueError as e:
            self.log.write("control_error", error="not JSON: %s" % e)
            return []
        rules = doc.get("rules", []) if isinstance(doc, dict) else []
        out = []
        for i, r in enumerate(rules):
            if not isinstance(r, dict) or r.get("action") not in ACTIONS:
                self.log.write("control_error", error="rule %d ignored: %r" % (i, r))
                continue
            out.append((i, r))
        return out

    @staticmethod
    def _matches(rule, method, path, payload=None):
        want = rule.get("method")
        if want and want.upper() != method.upper():
            return False
        # production-CA emulation: only requests whose JWS payload has this member
        if rule.get("payload_has") and not (isinstance(payload, dict) and rule["payload_has"] in payload):
            return False
        for ex in rule.get("exclude", []):
            if path_matches(ex, path):
                return False
        return path_matches(rule.get("match", "*"), path)

    def pick(self, method, path, payload=None):
        """The rules for this request: every ari rule, and the first other rule that fires.
        Rules after the one that fires are not consulted (nor their counters charged), so
        [reset times 1, status times 1] gives a reset, then a 503, then Pebble's answers."""
        with self._lock:
            rules = self._load()
            fired = []
            fault = False
            for i, r in rules:
                if r["action"] == "ari":
                    fired.append(r)  # ari is a standing behaviour, never counted
                    continue
                if fault or not self._matches(r, method, path, payload):
                    continue
                key = (i, json.dumps(r, sort_keys=True))
                n = self._fired.get(key, 0)
                times = r.get("times")
                skip = int(r.get("skip", 0))
                self._fired[key] = n + 1
                if n < skip:
                    continue
                if times is not None and n - skip >= int(times):
                    continue
                fired.append(r)
                fault = True
            return fired


def path_matches(pattern, path):
    if pattern == "*":
        return True
    if pattern.endswith("*"):
        return path.startswith(pattern[:-1])
    return path == pattern


def b64url_decode(s):
    s = s.strip()
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def describe_jws(body):
    """The protected header's url and the decoded payload of a flattened JWS, for the log."""
    try:
        jws = json.loads(body)
        protected = json.loads(b64url_decode(jws["protected"]))
        payload_raw = b64url_decode(jws["payload"])
    except (ValueError, KeyError, TypeError):
        return None
    out = {"url": protected.get("url"), "alg": protected.get("alg")}
    if payload_raw == b"":
        out["payload"] = ""  # POST-as-GET
    else:
        try:
            out["payload"] = json.loads(payload_raw)
        except ValueError:
            out["payload"] = payload_raw[:LOG_BODY_LIMIT].decode("utf-8", "replace")
    if len(json.dumps(out)) > LOG_BODY_LIMIT:
        out["payload"] = "(%d bytes, not logged)" % len(payload_raw)
    return out


def rfc3339(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_from(rule):
    """suggestedWindow from the rule: absolute "start"/"end" (RFC 3339) or "start_in"/
    "end_in" (seconds from now, negative for the past)."""
    now = time.time()
    start = rule.get("start") or rfc3339(now + float(rule.get("start_in", -7200)))
    end = rule.get("end") or rfc3339(now + float(rule.get("end_in", -3600)))
    return {"start": start, "end": end}


def rewrite_urls(value, origin, evil):
    if isinstance(value, str):
        return evil + value[len(origin):] if value.startswith(origin) else value
    if isinstance(value, list):
        return [rewrite_urls(v, origin, evil) for v in value]
    if isinstance(value, dict):
        return {k: rewrite_urls(v, origin, evil) for k, v in value.items()}
    return value


class Upstream:
    """One keep-alive HTTPS connection to the upstream per client connection."""

    def __init__(self, host, port, context, timeout):
        self.host, self.port, self.context, self.timeout = host, port, context, timeout
        self.conn = None

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def request(self, method, path, headers, body):
        for attempt in (1, 2):
            reused = self.conn is not None
            if self.conn is None:
                self.conn = http.client.HTTPSConnection(
                    self.host, self.port, context=self.context, timeout=self.timeout)
            try:
                self.conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
                for name, value in headers:
                    self.conn.putheader(name, value)
                if body or method in ("POST", "PUT"):
                    self.conn.putheader("Content-Length", str(len(body)))
                self.conn.endheaders(body if body else None)
                resp = self.conn.getresponse()
                data = resp.read()
                return resp.status, resp.reason, resp.getheaders(), data
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # An idle keep-alive connection the upstream closed: one fresh try.
                self.close()
                if not reused or attempt == 2:
                    raise
        raise AssertionError("unreachable")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fault_proxy"
    sys_version = ""

    def log_message(self, format, *args):  # noqa: A002 -- stdout/stderr stay quiet
        pass

    def setup(self):
        super().setup()
        self.upstream = Upstream(self.server.up_host, self.server.up_port,
                                 self.server.up_context, self.server.up_timeout)
        self.conn_id = self.server.next_conn_id()
        self.server.log.write("connect", conn=self.conn_id, peer="%s:%d" % self.client_address[:2])

    def finish(self):
        try:
            super().finish()
        finally:
            self.upstream.close()

    # --- plumbing -------------------------------------------------------------------

    def read_body(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_REQUEST_BODY:
                    raise ValueError("request body too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_REQUEST_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(length) if length else b""

    def raw_response(self, status, reason, headers, body, head=False, length=True):
        lines = ["HTTP/1.1 %d %s" % (status, reason or http.client.responses.get(status, ""))]
        for name, value in headers:
            lines.append("%s: %s" % (name, value))
        if length:
            lines.append("Content-Length: %d" % len(body))
        if not any(name.lower() == "date" for name, _ in headers):
            lines.append("Date: %s" % self.date_time_string())
        if self.close_connection:
            lines.append("Connection: close")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        return data if head else data + body

    def send_bytes(self, data):
        self.wfile.write(data)
        self.wfile.flush()

    def log(self, event, **fields):
        self.server.log.write(event, conn=self.conn_id, **fields)

    # --- one request ----------------------------------------------------------------

    def do_GET(self):
        self.proxy()

    def do_HEAD(self):
        self.proxy()

    def do_POST(self):
        self.proxy()

    def do_PUT(self):
        self.proxy()

    def do_DELETE(self):
        self.proxy()

    def proxy(self):
        method = self.command
        path = urllib.parse.urlsplit(self.path).path if "://" in self.path else self.path.split("?")[0]
        host = self.headers.get("Host", "")
        origin = "https://" + host
        try:
            body = self.read_body()
        except (ValueError, OSError) as e:
            self.log("bad_request", method=method, path=path, error=str(e))
            self.close_connection = True
            return
        entry = {"method": method, "path": path, "host": host}
        if method == "POST" and body:
            jws = describe_jws(body)
            if jws is not None:
                entry["jws"] = jws
        rules = self.server.control.pick(method, path, (entry.get("jws") or {}).get("payload"))
        ari = next((r for r in rules if r["action"] == "ari"), None)
        faults = [r for r in rules if r["action"] != "ari"]
        fault = faults[0] if faults else None
        if fault is not None:
            entry["fault"] = fault["action"]

        # ARI: answered here, never forwarded (Pebble 2.4 has no renewalInfo).
        ari_prefix = (ari or {}).get("path", "/renewal-info/")
        if ari is not None and method == "GET" and path.startswith(ari_prefix) and fault is None:
            certid = path[len(ari_prefix):]
            if ari_failure(self, ari, certid, entry):
                return
            answer = {"suggestedWindow": window_from(ari)}
            if ari.get("explanationURL"):
                answer["explanationURL"] = ari["explanationURL"]
            data = json.dumps(answer).encode()
            self.log("request", status=200, **entry)
            self.log("ari", certid=certid, window=answer["suggestedWindow"])
            self.send_bytes(self.raw_response(
                200, "OK", [("Content-Type", "application/json"),
                            ("Retry-After", str(ari.get("retry_after", 21600)))], data))
            return

        action = fault["action"] if fault else None
        # Faults answered without asking the upstream: the request never reaches Pebble.
        if action in ("status", "retry_after_garbage"):
            status = int(fault.get("status", 503))
            ptype = fault.get("type", "urn:ietf:params:acme:error:serverInternal"
                              if status != 429 else "urn:ietf:params:acme:error:rateLimited")
            problem = {"type": ptype, "detail": fault.get("detail", "fault_proxy: injected %d" % status),
                       "status": status}
            headers = [("Content-Type", "application/problem+json")]
            retry_after = fault.get("retry_after")
            if action == "retry_after_garbage":
                retry_after = fault.get("retry_after", "soon-ish")
            if retry_after is not None:
                headers.append(("Retry-After", str(retry_after)))
            self.log("request", status=status, retry_after=retry_after, **entry)
            self.send_bytes(self.raw_response(status, None, headers,
                                              json.dumps(problem).encode(), head=method == "HEAD"))
            return
        if action == "reset":
            self.log("request", status=None, **entry)
            self.close_connection = True
            # SO_LINGER 0: close() sends a TCP RST, no TLS close_notify, no answer.
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()
            except OSError:
                pass
            return
        if action == "oversize":
            size = int(fault.get("size", 70000))
            framing = fault.get("framing", "chunked")
            pad = b'{"pad":"' + b"x" * max(0, size - 10) + b'"}'
            headers = [("Content-Type", fault.get("content_type", "application/json"))]
            self.log("request", status=200, size=len(pad), framing=framing, **entry)
            if framing == "close":
                self.close_connection = True
                self.send_bytes(self.raw_response(200, "OK", headers, pad, length=False))
            else:
                headers.append(("Transfer-Encoding", "chunked"))
                data = self.raw_response(200, "OK", headers, b"", length=False)
                for i in range(0, len(pad), 4096):
                    piece = pad[i:i + 4096]
                    data += b"%x\r\n" % len(piece) + piece + b"\r\n"
                self.send_bytes(data + b"0\r\n\r\n")
            return

        # Everything else goes to the upstream first.
        fwd = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        try:
            status, reason, up_headers, data = self.upstream.request(method, self.path, fwd, body)
        except (OSError, http.client.HTTPException) as e:
            self.log("upstream_error", error=str(e), **entry)
            self.close_connection = True
            self.send_bytes(self.raw_response(
                502, "Bad Gateway", [("Content-Type", "text/plain")], b"upstream failed\n"))
            return
        headers = [(k, v) for k, v in up_headers if k.lower() not in HOP_BY_HOP]
        head = method == "HEAD"
        if head:  # keep the length the upstream announced for the body it did not send
            headers += [(k, v) for k, v in up_headers if k.lower() == "content-length"]

        if ari is not None and method == "GET" and path == ari.get("directory", "/dir") and status == 200:
            try:
                d = json.loads(data)
                d["renewalInfo"] = origin + ari_prefix
                if "profiles" in ari:  # certificate profiles (Pebble 2.4 offers none)
                    d.setdefault("meta", {})["profiles"] = ari["profiles"]
                data = json.dumps(d, indent=3).encode()
                entry["ari_directory"] = True
            except ValueError:
                pass
        if action == "garbage_json":
            data = fault.get("body", '{"status": "pending", "identifiers": [').encode()
            headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            headers.append(("Content-Type", fault.get("content_type", "application/json")))
        elif action == "drop_nonce":
            headers = [(k, v) for k, v in headers if k.lower() != "replay-nonce"]
        elif action == "offorigin":
            evil = fault.get("to", "https://evil.example:443")
            try:
                data = json.dumps(rewrite_urls(json.loads(data), origin, evil), indent=3).encode()
            except ValueError:
                pass
            if fault.get("headers"):
                headers = [(k, v.replace(origin, evil) if k.lower() in ("location", "link") else v)
                           for k, v in headers]
        elif action == "json_set":  # proc helper (issue 14 item 8)
            try:
                data = json_set(data, fault)
            except ValueError:
                pass
        elif action == "chain_private_key":
            if not data.endswith(b"\n"):
                data += b"\n"
            data += DUMMY_PRIVATE_KEY.encode()

        if action in ("replace_after", "stall", "processing"):
            status, reason, headers, data = ca_emulation(self, fault, entry, status, reason,
                                                         headers, data)
            if status is None:
                return
        self.log("request", status=status, **entry)
        if head:
            out = self.raw_response(status, reason, headers, b"", head=True, length=False)
        else:
            out = self.raw_response(status, reason, headers, data)
        if action == "trickle":
            self.close_connection = True
            interval = float(fault.get("interval", 1.0))
            try:
                for i in range(len(out)):
                    self.send_bytes(out[i:i + 1])
                    time.sleep(interval)
            except OSError as e:
                self.log("trickle_stopped", sent=i, of=len(out), error=str(e))
            return
        self.send_bytes(out)


# --- production-CA emulation (issue #21) ------------------------------------------------
# What Pebble 2.4 never does and production CAs do. Each acts after Pebble has handled the
# request, so the CA's state moved on while the client sees something else.

def ca_emulation(handler, fault, entry, status, reason, headers, data):
    """replace_after: Pebble acted, the client gets `status` (default 500) with a problem
    document (`type`, `detail`) and `retry_after`. stall: Pebble acted, the answer comes
    `seconds` later (default 30; the client has usually given up). processing: a `valid`
    order is shown as `processing`, without its certificate URL, with `retry_after`.
    Returns the answer to send, or status None when the connection was closed."""
    action = fault["action"]
    if action == "replace_after":
        st = int(fault.get("status", 500))
        problem = {"type": fault.get("type", "urn:ietf:params:acme:error:serverInternal"),
                   "detail": fault.get("detail", "fault_proxy: %d after the upstream acted" % st),
                   "status": st}
        if fault.get("instance"):
            problem["instance"] = fault["instance"]
        out = [(k, v) for k, v in headers if k.lower() == "replay-nonce"]
        out.append(("Content-Type", "application/problem+json"))
        if fault.get("retry_after") is not None:
            out.append(("Retry-After", str(fault["retry_after"])))
        entry["upstream_status"] = status
        return st, None, out, json.dumps(problem).encode()
    if action == "stall":
        entry["upstream_status"] = status
        handler.log("request", status=None, stalled=float(fault.get("seconds", 30)), **entry)
        time.sleep(float(fault.get("seconds", 30)))
        handler.close_connection = True
        return None, None, None, None
    if action == "processing":
        try:
            doc = json.loads(data)
        except ValueError:
            return status, reason, headers, data
        if isinstance(doc, dict) and doc.get("status") == "valid":
            doc["status"] = "processing"
            doc.pop("certificate", None)
            data = json.dumps(doc, indent=3).encode()
            headers = [(k, v) for k, v in headers if k.lower() not in ("retry-after", "content-length")]
            if fault.get("retry_after") is not None:
                headers.append(("Retry-After", str(fault["retry_after"])))
            entry["shown"] = "processing"
        return status, reason, headers, data
    return status, reason, headers, data


def ari_failure(handler, ari, certid, entry):
    """An `ari` rule with `error_status` (404, 500 ...) or `bad_json`: renewalInfo fails."""
    if ari.get("error_status"):
        st = int(ari["error_status"])
        body = json.dumps({"type": "urn:ietf:params:acme:error:serverInternal",
                           "detail": "fault_proxy: renewalInfo %d" % st, "status": st}).encode()
        handler.log("request", status=st, **entry)
        handler.send_bytes(handler.raw_response(
            st, None, [("Content-Type", "application/problem+json")], body))
        return True
    if ari.get("bad_json"):
        handler.log("request", status=200, **entry)
        handler.send_bytes(handler.raw_response(
            200, "OK", [("Content-Type", "application/json"),
                        ("Retry-After", str(ari.get("retry_after", 21600)))], b'{"suggestedWindow": {'))
        return True
    return False
# --- end of production-CA emulation ------------------------------------------------------


class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, tls, log, control, upstream, up_context):
        self.tls = tls
        self.log = log
        self.control = control
        self.up_host, self.up_port = upstream
        self.up_context = up_context
        self.up_timeout = 60
        self._ids = 0
        self._ids_lock = threading.Lock()
        super().__init__(addr, Handler)

    def next_conn_id(self):
        with self._ids_lock:
            self._ids += 1
            return self._ids

    def finish_request(self, request, client_address):
        # The TLS handshake happens here, in the connection's own thread, so a client that
        # never finishes it holds up nobody else.
        request.settimeout(120)
        try:
            conn = self.tls.wrap_socket(request, server_side=True)
        except (OSError, ssl.SSLError) as e:
            self.log.write("tls_error", peer="%s:%d" % client_address[:2], error=str(e))
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        except (OSError, ssl.SSLError) as e:
            self.log.write("connection_error", error=str(e))
        finally:
            try:
                conn.close()
            except OSError:
                pass

    def handle_error(self, request, client_address):
        self.log.write("handler_error", error=repr(sys.exc_info()[1]))


def parse_hostport(text, what):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise SystemExit("fault_proxy: %s must be HOST:PORT, not %r" % (what, text))
    return host.strip("[]"), int(port)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--listen", required=True, help="HOST:PORT (PORT 0: any free port)")
    p.add_argument("--upstream", required=True, help="https://HOST:PORT of Pebble")
    p.add_argument("--upstream-ca", required=True, help="PEM that Pebble's certificate verifies against")
    p.add_argument("--cert", required=True, help="PEM certificate to serve (SANs 127.0.0.1, localhost)")
    p.add_argument("--key", required=True, help="its private key (PEM)")
    p.add_argument("--control", required=True, help="JSON rules, re-read on every request")
    p.add_argument("--log", help="JSON-lines log of requests and faults (default: CONTROL.log)")
    p.add_argument("--max-seconds", type=float, default=600, help="exit after this long (default 600)")
    a = p.parse_args()

    up = urllib.parse.urlsplit(a.upstream)
    if up.scheme != "https" or not up.hostname:
        raise SystemExit("fault_proxy: --upstream must be https://HOST:PORT")
    upstream = (up.hostname, up.port or 443)

    log = Log(a.log or a.control + ".log")
    control = Control(a.control, log)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(a.cert, a.key)
    tls.set_alpn_protocols(["http/1.1"])
    up_context = ssl.create_default_context(cafile=a.upstream_ca)

    server = Server(parse_hostport(a.listen, "--listen"), tls, log, control, upstream, up_context)
    host, port = server.server_address[:2]

    def stop():
        log.write("stop", reason="--max-seconds %g reached" % a.max_seconds)
        os._exit(0)

    timer = threading.Timer(a.max_seconds, stop)
    timer.daemon = True
    timer.start()
    log.write("start", listen="%s:%d" % (host, port), upstream=a.upstream, pid=os.getpid())
    sys.stdout.write("ready https://%s:%d\n" % (host, port))
    sys.stdout.flush()
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
