#!/usr/bin/env python3
"""Start-to-first-response, idle RSS, and RSS with N idle keep-alive connections (loopback).

Usage: python3 benches/load/idle_memory.py target/release/harrier [N=10000]
Serves a throwaway directory with a 1 KiB file; every connection makes one request and stays open.
The server is stopped and the directory removed however the script ends.
"""
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

REQUEST = b"GET /1k.bin HTTP/1.1\r\nHost: a\r\n\r\n"
PORT = 18333
START_TIMEOUT = 30.0


def first_response(proc):
    """Polls until the server answers 200; fails if it exits or does not answer in time."""
    deadline = time.time() + START_TIMEOUT
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"harrier exited with {proc.returncode} before answering")
        try:
            with socket.create_connection(("127.0.0.1", PORT), timeout=1) as s:
                s.sendall(REQUEST)
                if b" 200 " in s.recv(4096):
                    return
        except OSError:
            time.sleep(0.001)
    sys.exit(f"harrier did not answer on port {PORT} within {START_TIMEOUT:.0f} s")


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    binary = sys.argv[1]
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    site = tempfile.mkdtemp()
    conns = []
    proc = None
    try:
        with open(os.path.join(site, "1k.bin"), "wb") as f:
            f.write(os.urandom(1024))
        t0 = time.time()
        proc = subprocess.Popen([binary, site, "-l", f"http://127.0.0.1:{PORT}"],
                                env={**os.environ, "HARRIER__LOG__ACCESS_LOG": "off"}, stderr=subprocess.DEVNULL)
        first_response(proc)
        first = time.time() - t0
        time.sleep(0.5)
        idle = rss_mib(proc.pid)
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", PORT))
            conns.append(s)
            s.sendall(REQUEST)
        for s in conns:
            s.settimeout(10)
            s.recv(4096)
        time.sleep(1)
        loaded = rss_mib(proc.pid)
        print(f"start to first response: {first * 1000:.0f} ms; idle RSS {idle:.1f} MiB; "
              f"with {n} idle keep-alive connections {loaded:.1f} MiB (+{loaded - idle:.1f} MiB)")
    finally:
        for s in conns:
            s.close()
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(site, ignore_errors=True)


if __name__ == "__main__":
    main()
