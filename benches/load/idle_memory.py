#!/usr/bin/env python3
"""Start-to-first-response, idle RSS, and RSS with N idle keep-alive connections (loopback).

Usage: python3 benches/load/idle_memory.py target/release/harrier [N=10000]
Serves a throwaway directory with a 1 KiB file; every connection makes one request and stays open.
"""
import tempfile
import socket, subprocess, time, os, resource, sys
hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]; resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
binary = sys.argv[1]
SITE = tempfile.mkdtemp()
with open(os.path.join(SITE, "1k.bin"), "wb") as f:
    f.write(os.urandom(1024))
port = 18333
t0 = time.time()
p = subprocess.Popen([binary, SITE, "-l", f"http://127.0.0.1:{port}"], env={**os.environ, "HARRIER__LOG__ACCESS_LOG": "off"}, stderr=subprocess.DEVNULL)
while True:
    try:
        s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: a\r\n\r\n"); d = s.recv(4096); s.close()
        if b" 200 " in d: break
    except OSError: pass
first = time.time() - t0
def rss():
    with open(f"/proc/{p.pid}/status") as f:
        for l in f:
            if l.startswith("VmRSS"): return int(l.split()[1]) / 1024
time.sleep(0.5)
idle = rss()
conns = []
N = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
for i in range(N):
    s = socket.create_connection(("127.0.0.1", port)); s.sendall(b"GET /1k.bin HTTP/1.1\r\nHost: a\r\n\r\n"); conns.append(s)
for s in conns:
    s.recv(4096)
time.sleep(1)
loaded = rss()
print(f"start to first response: {first*1000:.0f} ms; idle RSS {idle:.1f} MiB; with {N} idle keep-alive connections {loaded:.1f} MiB (+{loaded-idle:.1f} MiB)")
p.terminate(); p.wait()
