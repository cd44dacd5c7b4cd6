#!/usr/bin/env python3
"""Phase breakdown of one acme-agent issuance, from its ACME_AGENT_TRACE file.

  phases.py TRACE T_FORK T_END

TRACE holds "START_US END_US WHAT" lines (keystore/log.h); T_FORK and T_END are bash
$EPOCHREALTIME values taken just before the agent was started and just after it ended.
Prints a timeline (ms from T_FORK) and a summary: exec to main, module load, login, trust
store, TLS connect, each ACME request (client vs server time), waiting for validation,
signatures, file writes, exit. "server" is curl's time from the request handed to the
socket (CURLINFO_PRETRANSFER) to the end of the answer: on localhost, Pebble's time (curl's
STARTTRANSFER is no help: for a POST it marks the upload's start); "client" is the rest of
the request (connect, TLS, sending). Time between requests is the agent's own work
(JWS signing, parsing) or, between the challenge and the authorization turning valid, waiting.
"""
import re
import sys


def main():
    trace, t_fork, t_end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    t0 = t_fork * 1e6
    ev = []
    for line in open(trace):
        parts = line.rstrip("\n").split(" ", 2)
        if len(parts) != 3:
            continue
        ev.append(((int(parts[0]) - t0) / 1000, (int(parts[1]) - t0) / 1000, parts[2]))
    ev.sort()
    end = (t_end * 1e6 - t0) / 1000

    def first(name):
        return next((e for e in ev if e[2] == name), None)

    main_ev, ret = first("main"), first("return from main")
    if not main_ev or not ret:
        sys.exit("phases.py: the trace has no main / return from main line")
    reqs = []
    for s, e, what in ev:
        m = re.match(r"http (\S+) (\S+) connect=(\d+) tls=(\d+) sent=(\d+) first_byte=(\d+) total=(\d+)", what)
        if m:
            c, tls, sent, fb, tot = (int(x) / 1000 for x in m.groups()[2:])
            path = re.sub(r"^https://[^/]+", "", m.group(2))
            reqs.append(dict(start=s, end=e, method=m.group(1), path=path, connect=c, tls=tls,
                             server=max(tot - max(sent, tls), 0.0), total=tot))
    signs = [e for e in ev if e[2] == "sign"]

    rows = [(0.0, main_ev[0], "exec to main (fork, exec, dynamic loader, static init)")]
    for s, e, what in ev:
        if what in ("main", "return from main", "sign") or what.startswith("http "):
            continue
        rows.append((s, e - s, what))
    for i, r in enumerate(reqs):
        label = f"{r['method']} {r['path'][:48]}"
        extra = ""
        if r["tls"] > 0:
            extra = f"  (TCP connect {r['connect']:.1f}, TLS handshake {r['tls'] - r['connect']:.1f})"
        rows.append((r["start"], r["total"],
                     f"request {i + 1}: {label}: server {r['server']:.1f}, client {r['total'] - r['server']:.1f}{extra}"))
    for s, e, _ in signs:
        rows.append((s, e - s, "sign (PKCS#11 C_Sign)"))
    rows.append((ret[0], end - ret[0], "exit (destructors, C_Finalize, process end)"))
    rows.sort()

    print("phases of one acme-agent issuance (ACME_AGENT_TRACE; ms from the fork; one run)")
    print(f"  {'at_ms':>8} {'dur_ms':>7}  phase")
    for at, dur, what in rows:
        print(f"  {at:8.1f} {dur:7.1f}  {what}")

    # Waiting for validation: from the answer to the challenge POST to the start of the
    # request after the last authorization poll, less the polls and signatures in between.
    wait = 0.0
    chall = next((i for i, r in enumerate(reqs) if "/chal" in r["path"]), None)
    if chall is not None:
        j = chall + 1
        while j < len(reqs) and "/authz" in reqs[j]["path"].lower():
            j += 1
        if j > chall + 1:
            a, b = reqs[chall]["end"], reqs[j - 1]["end"]
            busy = sum(r["total"] for r in reqs[chall + 1:j])
            busy += sum(e - s for s, e, _ in signs if a <= s < b)
            wait = max(b - a - busy, 0.0)

    def span(name):
        return sum(e - s for s, e, w in ev if w == name)

    server = sum(r["server"] for r in reqs)
    client = sum(r["total"] - r["server"] for r in reqs)
    tls = next((r["tls"] for r in reqs if r["tls"] > 0), 0.0)
    first_req = reqs[0]["start"] if reqs else float("nan")
    print()
    print("summary (ms)")
    items = [
        ("exec to main", main_ev[0]),
        ("pkcs11 module load", span("pkcs11 module load")),
        (f"pkcs11 open key x{sum(1 for e in ev if e[2] == 'pkcs11 open key')} (module, token, login, key objects)", span("pkcs11 open key")),
        ("  of which C_Login", span("pkcs11 login")),
        ("trust store (--ca-file read + TLS context)", span("trust store: read --ca-file") + span("trust store: TLS context")),
        ("TLS connect (TCP + handshake, first request)", tls),
        (f"ACME requests: {len(reqs)}, server time", server),
        (f"ACME requests: {len(reqs)}, client time (incl. the connect above)", client),
        ("waiting for validation (idle between polls)", wait),
        (f"signatures: {len(signs)} (JWS + CSR)", sum(e - s for s, e, _ in signs)),
        ("file writes (certificate files)", span("write certificate files")),
        ("exit (return from main to process end)", end - ret[0]),
    ]
    for name, v in items:
        print(f"  {v:8.1f}  {name}")
    print(f"  {first_req:8.1f}  exec to first request")
    print(f"  {end:8.1f}  total (fork to process end)")
    # No "unaccounted" line: the phases overlap (the connect runs beside module load and
    # login), so they do not add up to the total.


if __name__ == "__main__":
    main()
