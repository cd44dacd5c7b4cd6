#!/usr/bin/env python3
"""The floor for bench/e2e.sh: the smallest ACME client that replays acme-agent's request
sequence for a one-name http-01 order with an existing account, and nothing else.

  floor.py register --server URL --ca-file PEM --dir DIR     (untimed set-up: keys, account)
  floor.py issue    --server URL --ca-file PEM --dir DIR --http-port ADDR:PORT NAME

`issue` prints one JSON line: {"seconds": S, "requests": N, "ok": true}, S being the time
from the first request (GET directory) to the certificate's last byte. What the floor leaves
out, on purpose: process start-up and imports (Python's are not the protocol's), key loading
and CSR building (done before the clock starts: "pre-signed where possible"), any wait
(authorization and order are polled back to back), state files. Keys are in memory (EC
P-256), one keep-alive TLS connection, its own http-01 responder thread on ADDR:PORT.
The same requests as acme-agent: GET directory, HEAD newNonce, POST newOrder, POST-as-GET
the authorization, POST the challenge, POST-as-GET the authorization until valid, POST
finalize, POST-as-GET the order until valid (when finalize did not already say so), POST-as-GET
the certificate.
"""
import argparse
import base64
import http.client
import http.server
import json
import os
import ssl
import sys
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Acme:
    def __init__(self, directory_url, ca_file, key, kid=None):
        self.directory_url = directory_url
        u = urllib.parse.urlsplit(directory_url)
        ctx = ssl.create_default_context(cafile=ca_file)
        self.conn = http.client.HTTPSConnection(u.hostname, u.port or 443, context=ctx)
        self.key = key
        self.kid = kid
        self.nonce = None
        self.requests = 0
        nums = key.public_key().public_numbers()
        self.jwk = {"crv": "P-256", "kty": "EC", "x": b64(nums.x.to_bytes(32, "big")),
                    "y": b64(nums.y.to_bytes(32, "big"))}

    def request(self, method, url, body=None, headers=None):
        self.requests += 1
        self.conn.request(method, urllib.parse.urlsplit(url)._replace(scheme="", netloc="").geturl(),
                          body=body, headers=headers or {})
        r = self.conn.getresponse()
        data = r.read()
        if r.getheader("Replay-Nonce"):
            self.nonce = r.getheader("Replay-Nonce")
        if r.status >= 400:
            raise SystemExit(f"floor: {method} {url}: HTTP {r.status}: {data[:300]!r}")
        return r, data

    def post(self, url, payload):
        protected = {"alg": "ES256", "nonce": self.nonce, "url": url}
        if self.kid:
            protected["kid"] = self.kid
        else:
            protected["jwk"] = self.jwk
        p = b64(json.dumps(protected).encode())
        q = "" if payload is None else b64(json.dumps(payload).encode())
        der = self.key.sign(f"{p}.{q}".encode(), ec.ECDSA(hashes.SHA256()))
        r_, s_ = decode_dss_signature(der)
        sig = b64(r_.to_bytes(32, "big") + s_.to_bytes(32, "big"))
        body = json.dumps({"protected": p, "payload": q, "signature": sig})
        return self.request("POST", url, body, {"Content-Type": "application/jose+json"})

    def directory(self):
        _, data = self.request("GET", self.directory_url)
        self.dir = json.loads(data)
        self.request("HEAD", self.dir["newNonce"])

    def thumbprint(self):
        canon = json.dumps(self.jwk, sort_keys=True, separators=(",", ":")).encode()
        h = hashes.Hash(hashes.SHA256())
        h.update(canon)
        return b64(h.finalize())


def load_key(path):
    with open(path, "rb") as f:
        return serialization.load_pem_private_key(f.read(), None)


def new_key(path):
    key = ec.generate_private_key(ec.SECP256R1())
    with open(path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return key


def register(a):
    os.makedirs(a.dir, exist_ok=True)
    acme = Acme(a.server, a.ca_file, new_key(os.path.join(a.dir, "account.pem")))
    acme.directory()
    r, _ = acme.post(acme.dir["newAccount"], {"termsOfServiceAgreed": True})
    with open(os.path.join(a.dir, "account.url"), "w") as f:
        f.write(r.getheader("Location"))
    new_key(os.path.join(a.dir, "cert.pem"))


def issue(a):
    kid = open(os.path.join(a.dir, "account.url")).read().strip()
    acme = Acme(a.server, a.ca_file, load_key(os.path.join(a.dir, "account.pem")), kid)
    cert_key = load_key(os.path.join(a.dir, "cert.pem"))
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, a.name)])).add_extension(
        x509.SubjectAlternativeName([x509.DNSName(a.name)]), critical=False).sign(
        cert_key, hashes.SHA256())
    csr_b64 = b64(csr.public_bytes(serialization.Encoding.DER))
    key_auth_suffix = "." + acme.thumbprint()

    # The http-01 responder: answers /.well-known/acme-challenge/TOKEN with TOKEN.THUMBPRINT.
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            token = self.path.rsplit("/", 1)[-1]
            body = (token + key_auth_suffix).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    host, port = a.http_port.rsplit(":", 1)
    server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    t0 = time.perf_counter()
    acme.directory()
    r, data = acme.post(acme.dir["newOrder"], {"identifiers": [{"type": "dns", "value": a.name}]})
    order_url = r.getheader("Location")
    order = json.loads(data)
    _, data = acme.post(order["authorizations"][0], None)
    chall = next(c for c in json.loads(data)["challenges"] if c["type"] == "http-01")
    acme.post(chall["url"], {})
    while True:
        _, data = acme.post(order["authorizations"][0], None)
        status = json.loads(data)["status"]
        if status == "valid":
            break
        if status != "pending":
            raise SystemExit(f"floor: authorization {status}: {data[:300]!r}")
    _, data = acme.post(order["finalize"], {"csr": csr_b64})
    order = json.loads(data)
    while order["status"] != "valid":
        if order["status"] not in ("processing", "ready"):
            raise SystemExit(f"floor: order {order['status']}")
        _, data = acme.post(order_url, None)
        order = json.loads(data)
    _, pem = acme.post(order["certificate"], None)
    seconds = time.perf_counter() - t0
    server.shutdown()
    if b"BEGIN CERTIFICATE" not in pem:
        raise SystemExit("floor: no certificate in the answer")
    print(json.dumps({"seconds": round(seconds, 4), "requests": acme.requests, "ok": True}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["register", "issue"])
    p.add_argument("name", nargs="?")
    p.add_argument("--server", required=True)
    p.add_argument("--ca-file", required=True)
    p.add_argument("--dir", required=True)
    p.add_argument("--http-port")
    a = p.parse_intermixed_args()
    if a.command == "register":
        register(a)
    else:
        if not a.name or not a.http_port:
            p.error("issue needs NAME and --http-port")
        issue(a)


if __name__ == "__main__":
    sys.exit(main())
