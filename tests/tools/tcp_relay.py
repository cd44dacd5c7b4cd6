#!/usr/bin/env python3
"""A plain TCP relay: the network link between one fleet node and PostgreSQL, which a test
cuts by stopping this process (every relayed connection dies with it) and restores by
starting it again on the same port.

    tcp_relay.py --listen 127.0.0.1:PORT --upstream 127.0.0.1:PG_PORT [--max-seconds 600]

Prints exactly one line on stdout once it accepts connections, `ready PORT`, and nothing
else. SO_REUSEADDR, so a restart can bind the port its predecessor held. Standard library
only (Debian 12's python3).
"""

import argparse
import socket
import sys
import threading
import time


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--max-seconds", type=float, default=600)
    a = ap.parse_args()
    host, port = a.listen.rsplit(":", 1)
    up_host, up_port = a.upstream.rsplit(":", 1)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, int(port)))
    server.listen(64)
    server.settimeout(0.5)
    print(f"ready {server.getsockname()[1]}", flush=True)
    deadline = time.monotonic() + a.max_seconds
    while time.monotonic() < deadline:
        try:
            client, _ = server.accept()
        except socket.timeout:
            continue
        try:
            upstream = socket.create_connection((up_host, int(up_port)), timeout=5)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        for src, dst in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(src, dst), daemon=True).start()
    return 0


if __name__ == "__main__":
    sys.exit(main())
