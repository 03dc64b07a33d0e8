#!/usr/bin/env python3
"""Load harness: harrier against nginx on the same machine, same files, interleaved rounds.

Usage:  python3 benches/load/run.py [--rounds 3] [--duration 5] [--only NAME ...] [--full]

Builds harrier in release mode, finds (or apt-installs) nginx, wrk and h2load, writes
equivalent configs for both servers (access logs off), pins the server to core 0 and the load
generator to core 1 (one worker each) unless --full, runs every workload for each server in
turn (harrier, nginx, harrier, nginx, ...), and prints a table per workload: median requests/s
with the spread between rounds, p99 latency, requests per server CPU-second, peak RSS, and the
ratio harrier/nginx. Traffic goes to 127.0.0.1 only; every process it starts is stopped.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
HARRIER = os.path.join(TARGET, "release", "harrier")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def ensure_tools():
    need = {"nginx": "nginx-light", "wrk": "wrk", "h2load": "nghttp2-client", "openssl": "openssl"}
    missing = [pkg for tool, pkg in need.items() if not shutil.which(tool) and not os.path.exists("/usr/sbin/" + tool)]
    if missing:
        if os.geteuid() != 0:
            sys.exit(f"missing tools: install {' '.join(missing)}")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def cpu_seconds(pids):
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def peak_rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                m = re.search(r"VmHWM:\s+(\d+)", f.read())
            total += int(m.group(1)) if m else 0
        except OSError:
            pass
    return total


def children(pid):
    try:
        out = sh(["pgrep", "-P", str(pid)]).stdout.split()
    except subprocess.CalledProcessError:
        out = []
    return [pid] + [int(p) for p in out]


class Server:
    def __init__(self, name, cmd, ports, env=None):
        self.name, self.cmd, self.ports, self.env = name, cmd, ports, env

    def start(self, pin):
        prefix = ["taskset", "-c", pin] if pin else []
        self.proc = subprocess.Popen(prefix + self.cmd, env=self.env, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        for p in self.ports.values():
            wait_port(p)
        time.sleep(0.2)
        self.pids = children(self.proc.pid)

    def stop(self):
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)


def make_site(d):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "13.txt"), "w") as f:
        f.write("Hello, World!")
    for name, size in (("1k.bin", 1024), ("100k.bin", 100 * 1024), ("10m.bin", 10 * 1024 * 1024)):
        with open(os.path.join(d, name), "wb") as f:
            f.write(os.urandom(size))


def make_cert(d):
    key, crt = os.path.join(d, "key.pem"), os.path.join(d, "cert.pem")
    sh(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost",
        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
    return crt, key


def harrier_server(tmp, site, crt, key, workers):
    ports = {"http": free_port(), "https": free_port()}
    conf = os.path.join(tmp, "harrier.toml")
    with open(conf, "w") as f:
        f.write(f"""[server]
worker_threads = {workers}
[log]
access_log = "off"
level = "warn"
[static]
root = "{site}"
[[endpoints]]
url = "http://127.0.0.1:{ports['http']}"
[[endpoints]]
url = "https://127.0.0.1:{ports['https']}"
certificate = {{ path = "{crt}", key = "{key}" }}
""")
    return Server("harrier", [HARRIER, "serve", "-c", conf], ports)


def nginx_server(tmp, site, crt, key, workers):
    ports = {"http": free_port(), "https": free_port()}
    conf = os.path.join(tmp, "nginx.conf")
    with open(conf, "w") as f:
        f.write(f"""worker_processes {workers};
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log crit;
events {{ worker_connections 16384; }}
http {{
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  open_file_cache max=1000 inactive=60s;
  keepalive_requests 10000000;
  default_type application/octet-stream;
  server {{
    listen 127.0.0.1:{ports['http']};
    root {site};
  }}
  server {{
    listen 127.0.0.1:{ports['https']} ssl http2;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    root {site};
  }}
}}
""")
    return Server("nginx", ["nginx", "-c", conf, "-p", tmp], ports)


# name, tool, scheme, path, extra arguments
WORKLOADS = [
    ("h1 13B", "wrk", "http", "/13.txt", []),
    ("h1 1KiB", "wrk", "http", "/1k.bin", []),
    ("h1 100KiB", "wrk", "http", "/100k.bin", []),
    ("h1 10MiB", "wrk", "http", "/10m.bin", ["-c", "8"]),
    ("h1 1KiB close", "wrk", "http", "/1k.bin", ["-H", "Connection: close"]),
    ("tls h1 1KiB", "wrk", "https", "/1k.bin", []),
    ("tls handshakes", "wrk", "https", "/13.txt", ["-H", "Connection: close"]),
    ("h2 tls 13B", "h2load", "https", "/13.txt", []),
    ("h2 tls 1KiB", "h2load", "https", "/1k.bin", []),
]


def run_load(tool, url, extra, duration, pin):
    prefix = ["taskset", "-c", pin] if pin else []
    if tool == "wrk":
        conns = "50"
        if "-c" in extra:
            conns = extra[extra.index("-c") + 1]
            extra = [a for i, a in enumerate(extra) if a != "-c" and (i == 0 or extra[i - 1] != "-c")]
        out = sh(prefix + ["wrk", "-t1", "-c", conns, "-d", f"{duration}s", "--latency", *extra, url]).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
        p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)] if m else float("nan")
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", out)
        return rps, p99, out if errors else None
    out = sh(prefix + ["h2load", "-t1", "-c", "50", "-m", "10", "-D", str(duration), url]).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    m = re.search(r"time for request:\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(3)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(4)] if m else float("nan")
    return rps, p99, None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="workload names (substring match)")
    ap.add_argument("--full", action="store_true", help="both servers on the whole machine, unpinned")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()

    ensure_tools()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    pin_server, pin_load = (None, None) if args.full or os.cpu_count() < 2 else ("0", "1")
    workers = os.cpu_count() if args.full else 1

    tmp = tempfile.mkdtemp(prefix="harrier-bench-")
    os.chmod(tmp, 0o755)  # nginx workers run as an unprivileged user and must read the site
    site = os.path.join(tmp, "site")
    make_site(site)
    crt, key = make_cert(tmp)
    os.makedirs(os.path.join(tmp, "n"))
    servers = [harrier_server(tmp, site, crt, key, workers),
               nginx_server(os.path.join(tmp, "n"), site, crt, key, workers)]
    try:
        for s in servers:
            s.start(pin_server)
        print(f"machine: {os.cpu_count()} cores; {'full machine' if args.full else 'server on core 0, load on core 1, one worker each'}; "
              f"{args.rounds} rounds x {args.duration}s per workload and server")
        header = f"{'workload':16} {'harrier req/s':>20} {'nginx req/s':>20} {'ratio':>6} {'p99 ms h/n':>13} {'req/CPU-s h/n':>17} {'peak RSS MiB h/n':>17}"
        print(header)
        print("-" * len(header))
        for name, tool, scheme, path, extra in WORKLOADS:
            if args.only and not any(o in name for o in args.only):
                continue
            res = {s.name: {"rps": [], "p99": [], "eff": []} for s in servers}
            for _ in range(args.rounds):
                for s in servers:
                    url = f"{scheme}://127.0.0.1:{s.ports[scheme]}{path}"
                    before = cpu_seconds(s.pids)
                    rps, p99, problem = run_load(tool, url, extra, args.duration, pin_load)
                    cpu = cpu_seconds(s.pids) - before
                    if problem:
                        detail = "; ".join(l.strip() for l in problem.splitlines() if "error" in l or "Non-2xx" in l)
                        print(f"  warning: {s.name} {name}: {detail}", file=sys.stderr)
                    res[s.name]["rps"].append(rps)
                    res[s.name]["p99"].append(p99)
                    res[s.name]["eff"].append(rps * args.duration / cpu if cpu > 0 else float("nan"))
            h, n = res["harrier"], res["nginx"]
            med = lambda xs: statistics.median(xs)
            spread = lambda xs: (max(xs) - min(xs)) / med(xs) * 100 if med(xs) else 0
            ratio = med(h["rps"]) / med(n["rps"]) if med(n["rps"]) else float("nan")
            rss = [peak_rss_kib(s.pids) / 1024 for s in servers]
            print(f"{name:16} {med(h['rps']):>12.0f} ±{spread(h['rps']):>4.1f}% {med(n['rps']):>12.0f} ±{spread(n['rps']):>4.1f}% "
                  f"{ratio:>6.2f} {med(h['p99']):>6.2f}/{med(n['p99']):<6.2f} {med(h['eff']):>8.0f}/{med(n['eff']):<8.0f} "
                  f"{rss[0]:>8.1f}/{rss[1]:<8.1f}", flush=True)
    finally:
        for s in servers:
            if hasattr(s, "proc"):
                s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
