#!/usr/bin/env python3
"""A device registry's verifier for `acme-agent key attest` evidence, written from the TPM 2.0
and WebAuthn specifications and sharing no code with the agent (its own CBOR decoder, its own
TPM structure parsers; python3-cryptography for the signature, openssl for the EK chain).

usage: tpm_attest_verify.py EVIDENCE --nonce HEX [--ca ROOT.pem] [--expect-key PUB.pem]
                            [--expect-ak AKPUBAREA] [--save-ak AKPUBAREA]
EVIDENCE is the attestation object as CBOR or as JSON (bytes in base64url). Exit 0 and
"OK ..." when every check passes, else exit 1 and "FAIL: reason".
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import subprocess
import sys
import tempfile

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


class Fail(Exception):
    pass


def check(cond, why):
    if not cond:
        raise Fail(why)


# --- CBOR (RFC 8949), only what an attestation object holds; strict on determinism --------
def cbor_decode(data):
    def item(i):
        check(i < len(data), "CBOR: truncated")
        ib = data[i]
        major, info = ib >> 5, ib & 0x1F
        i += 1
        if info < 24:
            n = info
        elif info in (24, 25, 26, 27):
            w = 1 << (info - 24)
            check(i + w <= len(data), "CBOR: truncated head")
            n = int.from_bytes(data[i:i + w], "big")
            check(n >= (24 if w == 1 else 1 << (8 * w // 2)), "CBOR: head not shortest")
            i += w
        else:
            raise Fail("CBOR: indefinite length or reserved head")
        if major == 0:
            return n, i
        if major == 1:
            return -1 - n, i
        if major in (2, 3):
            check(i + n <= len(data), "CBOR: truncated string")
            s = data[i:i + n]
            return (bytes(s) if major == 2 else s.decode("utf-8")), i + n
        if major == 4:
            out = []
            for _ in range(n):
                v, i = item(i)
                out.append(v)
            return out, i
        if major == 5:
            out, last = {}, None
            for _ in range(n):
                start = i
                k, i = item(i)
                enc = data[start:i]
                check(last is None or enc > last, "CBOR: map keys not in canonical order")
                last = enc
                v, i = item(i)
                out[k] = v
            return out, i
        raise Fail("CBOR: unexpected major type %d" % major)

    v, end = item(0)
    check(end == len(data), "CBOR: trailing bytes")
    return v


def b64u(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def load_evidence(path):
    raw = open(path, "rb").read()
    if raw[:1] == b"{":
        j = json.loads(raw)
        st = j["attStmt"]
        out = {"fmt": j["fmt"], "akPubArea": b64u(j["akPubArea"]), "attStmt": {
            "ver": st["ver"], "alg": st["alg"], "sig": b64u(st["sig"]),
            "certInfo": b64u(st["certInfo"]), "pubArea": b64u(st["pubArea"])}}
        if "x5c" in st:
            out["attStmt"]["x5c"] = [b64u(c) for c in st["x5c"]]
        return out
    return cbor_decode(raw)


# --- TPM 2.0 structures (Part 2) -----------------------------------------------------------
class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, n):
        check(self.i + n <= len(self.b), "TPM structure truncated")
        v = self.b[self.i:self.i + n]
        self.i += n
        return v

    def u16(self):
        return struct.unpack(">H", self.take(2))[0]

    def u32(self):
        return struct.unpack(">I", self.take(4))[0]

    def u64(self):
        return struct.unpack(">Q", self.take(8))[0]

    def tpm2b(self):
        return self.take(self.u16())

    def done(self):
        check(self.i == len(self.b), "TPM structure has trailing bytes")


ALG_RSA, ALG_SHA256, ALG_NULL, ALG_ECDSA, ALG_ECC = 0x0001, 0x000B, 0x0010, 0x0018, 0x0023
HASHES = {0x000B: hashlib.sha256, 0x000C: hashlib.sha384, 0x000D: hashlib.sha512}
ATTR = {"fixedTPM": 1 << 1, "fixedParent": 1 << 4, "sensitiveDataOrigin": 1 << 5,
        "restricted": 1 << 16, "decrypt": 1 << 17, "sign": 1 << 18}
CURVES = {0x0003: ec.SECP256R1(), 0x0004: ec.SECP384R1()}


def parse_public(b):
    """TPMT_PUBLIC -> dict(type, nameAlg, attrs, key: a cryptography public key)."""
    r = Reader(b)
    t, name_alg, attrs = r.u16(), r.u16(), r.u32()
    r.tpm2b()  # authPolicy
    if t == ALG_ECC:
        sym = r.u16()
        if sym != ALG_NULL:
            r.u16(), r.u16()
        scheme = r.u16()
        if scheme != ALG_NULL:
            r.u16()
        curve = r.u16()
        kdf = r.u16()
        if kdf != ALG_NULL:
            r.u16()
        x, y = r.tpm2b(), r.tpm2b()
        check(curve in CURVES, "unknown curve 0x%04x" % curve)
        key = ec.EllipticCurvePublicNumbers(int.from_bytes(x, "big"), int.from_bytes(y, "big"),
                                            CURVES[curve]).public_key()
    elif t == ALG_RSA:
        sym = r.u16()
        if sym != ALG_NULL:
            r.u16(), r.u16()
        scheme = r.u16()
        if scheme != ALG_NULL:
            r.u16()
        r.u16()  # keyBits
        exp = r.u32() or 65537
        n = r.tpm2b()
        key = rsa.RSAPublicNumbers(exp, int.from_bytes(n, "big")).public_key()
    else:
        raise Fail("public area of unknown type 0x%04x" % t)
    r.done()
    check(name_alg in HASHES, "unknown nameAlg 0x%04x" % name_alg)
    return {"type": t, "nameAlg": name_alg, "attrs": attrs, "key": key}


def tpm_name(pub_bytes):
    name_alg = struct.unpack(">H", pub_bytes[2:4])[0]
    return struct.pack(">H", name_alg) + HASHES[name_alg](pub_bytes).digest()


TPM_GENERATED = 0xFF544347
ST_ATTEST_CERTIFY = 0x8017
RH_ENDORSEMENT = 0x4000000B


def parse_certify(b):
    r = Reader(b)
    out = {"magic": r.u32(), "type": r.u16(), "qualifiedSigner": r.tpm2b(),
           "extraData": r.tpm2b()}
    r.take(17)  # clockInfo: clock, resetCount, restartCount, safe
    r.u64()  # firmwareVersion
    check(out["type"] == ST_ATTEST_CERTIFY, "certInfo is not TPM_ST_ATTEST_CERTIFY (0x%04x)"
          % out["type"])
    out["name"], out["qualifiedName"] = r.tpm2b(), r.tpm2b()
    r.done()
    return out


def spki(key):
    return key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def verify(args):
    ev = load_evidence(args.evidence)
    check(ev.get("fmt") == "tpm", "fmt is not \"tpm\"")
    st = ev["attStmt"]
    check(st.get("ver") == "2.0", "ver is not \"2.0\"")
    check(st.get("alg") == -7, "alg %r is not ES256 (-7)" % st.get("alg"))

    # 1. The AK: a restricted signing key made in a TPM, a primary of the endorsement
    # hierarchy (its qualified name in certInfo says so), and the one enrolled (if known).
    ak_bytes = ev["akPubArea"]
    ak = parse_public(ak_bytes)
    for a in ("fixedTPM", "fixedParent", "sensitiveDataOrigin", "restricted", "sign"):
        check(ak["attrs"] & ATTR[a], "the AK lacks %s" % a)
    check(isinstance(ak["key"], ec.EllipticCurvePublicKey), "the AK is not an ECC key")
    if args.expect_ak:
        check(open(args.expect_ak, "rb").read() == ak_bytes,
              "the AK is not the one enrolled for this device (another TPM?)")

    # 2. certInfo: made by the TPM, certifying, over our nonce, signed by that AK.
    info = parse_certify(st["certInfo"])
    check(info["magic"] == TPM_GENERATED, "certInfo magic is not TPM_GENERATED_VALUE")
    check(info["extraData"] == bytes.fromhex(args.nonce),
          "extraData is not our nonce (replayed or for another challenge)")
    try:
        ak["key"].verify(st["sig"], st["certInfo"], ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise Fail("sig does not verify over certInfo with the AK's public key")
    ak_name = tpm_name(ak_bytes)
    ak_qn = struct.pack(">H", ak["nameAlg"]) + HASHES[ak["nameAlg"]](
        struct.pack(">I", RH_ENDORSEMENT) + ak_name).digest()
    check(info["qualifiedSigner"] == ak_qn,
          "qualifiedSigner is not the AK as a primary of the endorsement hierarchy")

    # 3. The certified key: its name is in certInfo; it was made in the TPM and cannot leave.
    pub_bytes = st["pubArea"]
    key = parse_public(pub_bytes)
    check(info["name"] == tpm_name(pub_bytes),
          "certified name is not the nameAlg digest of pubArea")
    for a in ("fixedTPM", "fixedParent", "sensitiveDataOrigin", "sign"):
        check(key["attrs"] & ATTR[a], "the key lacks %s" % a)
    check(not key["attrs"] & ATTR["decrypt"], "the key can decrypt")
    if args.expect_key:
        want = serialization.load_pem_public_key(open(args.expect_key, "rb").read())
        check(spki(want) == spki(key["key"]), "pubArea is not the expected key (another TPM?)")

    # 4. The EK certificate chains to the manufacturer's CA (openssl verify).
    x5c = st.get("x5c", [])
    if args.ca:
        check(x5c, "no x5c: the TPM has no EK certificate")
        with tempfile.TemporaryDirectory() as d:
            leaf, inter = os.path.join(d, "ek.pem"), os.path.join(d, "chain.pem")
            certs = [x509.load_der_x509_certificate(c) for c in x5c]
            with open(leaf, "wb") as f:
                f.write(certs[0].public_bytes(serialization.Encoding.PEM))
            with open(inter, "wb") as f:
                for c in certs[1:]:
                    f.write(c.public_bytes(serialization.Encoding.PEM))
            cmd = ["openssl", "verify", "-CAfile", args.ca]
            if len(certs) > 1:
                cmd += ["-untrusted", inter]
            p = subprocess.run(cmd + [leaf], capture_output=True, text=True)
            check(p.returncode == 0, "the EK certificate does not chain to %s: %s"
                  % (args.ca, (p.stdout + p.stderr).strip()))
    if args.save_ak:
        open(args.save_ak, "wb").write(ak_bytes)
    return "OK ek-chain=%d key=%s" % (len(x5c), "ECC" if key["type"] == ALG_ECC else "RSA")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("evidence")
    p.add_argument("--nonce", required=True)
    p.add_argument("--ca")
    p.add_argument("--expect-key")
    p.add_argument("--expect-ak")
    p.add_argument("--save-ak")
    args = p.parse_args()
    try:
        print(verify(args))
    except (Fail, KeyError, ValueError, TypeError) as e:
        print("FAIL: %s" % e)
        sys.exit(1)


if __name__ == "__main__":
    main()
