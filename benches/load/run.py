#!/usr/bin/env python3
"""Load harness: harrier against nginx on the same machine, same files, interleaved rounds.

Usage:  python3 benches/load/run.py [--rounds 3] [--duration 5] [--only NAME ...] [--full] [--access-log]
        python3 benches/load/run.py --only h3 [--no-caddy] [--h3-conns 50 --h3-streams 10]

Builds harrier in release mode, finds (or apt-installs) nginx, wrk and h2load, writes
equivalent configs for both servers (access logs off; --access-log turns both on, combined
format, to a file each, emptied before every round), pins the server to core 0 and the load
generator to core 1 (one worker each) unless --full, runs every workload for each server in
turn (harrier, nginx, harrier, nginx, ...), and prints a table per workload: median requests/s
with the spread between rounds, p99 latency, requests per server CPU-second, peak RSS, and the
ratio harrier/nginx. Traffic goes to 127.0.0.1 only; every process it starts is stopped.

HTTP/3 ("h3 tls 1KiB") is measured with benches/h3load.rs (built with `cargo bench --bench
h3load --no-run`), since Debian's h2load has no QUIC and Debian's nginx (1.22) no HTTP/3. Its
table compares harrier's HTTP/3 with harrier's own h2 over TLS on the same file (issue target:
h3 >= 0.5x h2), and with Caddy (Debian package `caddy`, installed if missing and possible).
"""
import argparse
import json
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
# HTTP/3 load: connections x concurrent streams per connection (h2load uses -c 50 -m 10).
H3_CONNS, H3_STREAMS = 50, 10


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


def ensure_caddy():
    """Caddy (Debian package `caddy`) for the HTTP/3 comparison, or None if unavailable."""
    if not shutil.which("caddy") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "caddy"], capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return shutil.which("caddy")


def build_h3load():
    """Builds benches/h3load.rs (bench profile) and returns the path of its executable."""
    out = sh(["cargo", "bench", "--bench", "h3load", "--no-run", "--message-format=json"], cwd=ROOT).stdout
    for line in out.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "h3load" and msg.get("executable"):
            return msg["executable"]
    sys.exit("cargo did not report the h3load executable")


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
    def __init__(self, name, cmd, ports, env=None, log=None):
        """`log`: the access log file (harrier's stdout goes there), emptied before each round."""
        self.name, self.cmd, self.ports, self.env, self.log = name, cmd, ports, env, log

    def start(self, pin):
        prefix = ["taskset", "-c", pin] if pin else []
        # Append mode, so that emptying the file between rounds needs no cooperation.
        out = open(self.log, "ab") if self.log and self.name == "harrier" else subprocess.DEVNULL
        self.proc = subprocess.Popen(prefix + self.cmd, env=self.env, stdout=out,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        for p in self.ports.values():
            wait_port(p)
        time.sleep(0.2)
        self.pids = children(self.proc.pid)

    def stop(self):
        """Stops the whole process group (nginx workers too); never raises, so that one
        server already gone does not leave the others running."""
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, None)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                pass


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


def nginx(name, tmp, workers, http, ports, log=None):
    """An nginx in the foreground, files under `tmp`, access log off unless `log` names its
    file; `http` is the rest of its http block."""
    conf = os.path.join(tmp, f"{name}.conf")
    access = f"{log} combined" if log else "off"
    with open(conf, "w") as f:
        f.write(f"""worker_processes {workers};
daemon off;
pid {tmp}/{name}.pid;
error_log {tmp}/{name}-error.log crit;
events {{ worker_connections 16384; }}
http {{
  access_log {access};
  open_file_cache max=1000 inactive=60s;
  keepalive_requests 10000000;
  default_type application/octet-stream;
{http}}}
""")
    return Server(name, ["nginx", "-c", conf, "-p", tmp], ports, log=log)


def upstream_server(tmp, site):
    """The fast upstream both proxies forward to: an nginx serving the same files."""
    port = free_port()
    return nginx("upstream", tmp, 1, f"  server {{ listen 127.0.0.1:{port}; root {site}; }}\n", {"http": port})


def harrier_server(tmp, site, crt, key, workers, upstream_port, log=None):
    # "h3": an https endpoint that also speaks HTTP/3 (UDP on the same port); the "https"
    # one stays h1+h2 only, so the other workloads see no alt-svc header. "proxy": a site of
    # its own that forwards everything to the upstream.
    ports = {"http": free_port(), "https": free_port(), "h3": free_port(), "proxy": free_port()}
    conf = os.path.join(tmp, "harrier.toml")
    with open(conf, "w") as f:
        f.write(f"""[server]
worker_threads = {workers}
[log]
access_log = "{'combined' if log else 'off'}"
level = "warn"
[static]
root = "{site}"
[[endpoints]]
name = "http"
url = "http://127.0.0.1:{ports['http']}"
[[endpoints]]
name = "https"
url = "https://127.0.0.1:{ports['https']}"
certificate = {{ path = "{crt}", key = "{key}" }}
[[endpoints]]
name = "h3"
url = "https://127.0.0.1:{ports['h3']}"
protocols = ["http1", "http2", "http3"]
certificate = {{ path = "{crt}", key = "{key}" }}
[[endpoints]]
name = "proxy"
url = "http://127.0.0.1:{ports['proxy']}"
[[sites]]
hosts = ["*"]
endpoints = ["proxy"]
root = "{site}"
[[sites.routes]]
path = "/*"
handler = {{ type = "proxy", upstreams = ["http://127.0.0.1:{upstream_port}"], max_idle_per_upstream = 64 }}
[[sites]]
hosts = ["*"]
endpoints = ["http", "https", "h3"]
root = "{site}"
[[sites.routes]]
path = "/13.txt"
handler = {{ type = "respond", body = "Hello, World!", headers = {{ "content-type" = "text/plain" }} }}
""")
    return Server("harrier", [HARRIER, "serve", "-c", conf], ports, log=log)


def nginx_server(tmp, site, crt, key, workers, upstream_port, log=None):
    ports = {"http": free_port(), "https": free_port(), "proxy": free_port()}
    return nginx("nginx", tmp, workers, f"""  sendfile on; tcp_nopush on; tcp_nodelay on;
  server {{
    listen 127.0.0.1:{ports['http']};
    root {site};
    location = /13.txt {{ default_type text/plain; return 200 "Hello, World!"; }}
  }}
  server {{
    listen 127.0.0.1:{ports['https']} ssl http2;
    ssl_certificate {crt};
    ssl_certificate_key {key};
    # nginx 1.22 defaults to TLS 1.0-1.2; harrier negotiates TLS 1.3, so nginx must offer it too.
    ssl_protocols TLSv1.2 TLSv1.3;
    root {site};
    location = /13.txt {{ default_type text/plain; return 200 "Hello, World!"; }}
  }}
  upstream up {{ server 127.0.0.1:{upstream_port}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{ports['proxy']};
    location / {{
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }}
  }}
""", ports, log)


def caddy_server(tmp, site, crt, key, workers):
    """Caddy serving the same files over https with h1, h2 and h3 (UDP on the same port)."""
    port = free_port()
    ports = {"https": port, "h3": port}
    conf = os.path.join(tmp, "Caddyfile")
    with open(conf, "w") as f:
        f.write(f"""{{
\tadmin off
\tauto_https off
\tskip_install_trust
\tlog {{
\t\toutput discard
\t}}
\tservers {{
\t\tprotocols h1 h2 h3
\t}}
}}
https://:{port} {{
\tbind 127.0.0.1
\ttls {crt} {key}
\troot * {site}
\tfile_server
}}
""")
    env = {**os.environ, "GOMAXPROCS": str(workers), "HOME": tmp,
           "XDG_DATA_HOME": os.path.join(tmp, "data"), "XDG_CONFIG_HOME": os.path.join(tmp, "config")}
    return Server("caddy", ["caddy", "run", "--config", conf, "--adapter", "caddyfile"], ports, env)


# name, tool, scheme, path, extra arguments
WORKLOADS = [
    # 13 B: a fixed response (harrier `respond`, nginx `return 200`), not a file.
    ("h1 13B", "wrk", "http", "/13.txt", []),
    ("h1 1KiB", "wrk", "http", "/1k.bin", []),
    ("h1 100KiB", "wrk", "http", "/100k.bin", []),
    ("h1 10MiB", "wrk", "http", "/10m.bin", ["-c", "8"]),
    ("h1 1KiB close", "wrk", "http", "/1k.bin", ["-H", "Connection: close"]),
    ("tls h1 1KiB", "wrk", "https", "/1k.bin", []),
    ("tls handshakes", "wrk", "https", "/13.txt", ["-H", "Connection: close"]),
    ("h2 tls 13B", "h2load", "https", "/13.txt", []),
    ("h2 tls 1KiB", "h2load", "https", "/1k.bin", []),
    # Both servers forward to the same upstream nginx (pinned with the load generator).
    ("proxy 1KiB", "wrk", "proxy", "/1k.bin", []),
    # Own table: harrier h3 vs harrier h2 (same file) and vs Caddy h3.
    ("h3 tls 1KiB", "h3load", "h3", "/1k.bin", []),
]


def run_load(tool, url, extra, duration, pin, h3load=None):
    prefix = ["taskset", "-c", pin] if pin else []
    if tool == "h3load":
        # 1 s warm-up (not counted), then `duration` seconds measured; last stdout line: JSON.
        proc = subprocess.run(prefix + [h3load, url, "-c", str(H3_CONNS), "-m", str(H3_STREAMS), "-d", str(duration),
                                        "-w", "1", "--insecure"], text=True, capture_output=True,
                              timeout=duration + 60)
        lines = proc.stdout.strip().splitlines()
        res = json.loads(lines[-1]) if lines else {"error": proc.stderr.strip()}
        if "error" in res:
            raise RuntimeError(f"h3load {url}: {res['error']}")
        problem = None
        if res["errors"] or res["non_2xx"] or proc.returncode:
            problem = f"{res['errors']} errors, {res['non_2xx']} non-2xx"
        # Served requests, warm-up included, for the req per CPU-second figure.
        return res["rps"], res["latency_ms"]["p99"], problem, res["requests"] + res["warm_up_requests"]
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
        return rps, p99, out if errors else None, rps * duration
    out = sh(prefix + ["h2load", "-t1", "-c", "50", "-m", "10", "-D", str(duration), url]).stdout
    rps = float(re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out).group(1))
    m = re.search(r"time for request:\s+[\d.]+\w+\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    p99 = float(m.group(3)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(4)] if m else float("nan")
    return rps, p99, None, rps * duration


def stats(xs):
    """Median and spread (max - min, % of the median) of a list of rounds."""
    med = statistics.median(xs)
    return med, ((max(xs) - min(xs)) / med * 100 if med else 0)


def measure(server, tool, scheme, path, extra, args, pin_load, h3load, label):
    """One round of one workload against one server: (req/s, p99 ms, req per CPU-second)."""
    # `scheme` names the server's port; "h3" and "proxy" are https and http endpoints.
    url = f"{'https' if scheme in ('https', 'h3') else 'http'}://127.0.0.1:{server.ports[scheme]}{path}"
    if getattr(server, "log", None):
        open(server.log, "r+b").truncate(0)
    before = cpu_seconds(server.pids)
    rps, p99, problem, served = run_load(tool, url, extra, args.duration, pin_load, h3load)
    cpu = cpu_seconds(server.pids) - before
    if problem:
        detail = "; ".join(l.strip() for l in problem.splitlines() if "error" in l or "Non-2xx" in l)
        print(f"  warning: {server.name} {label}: {detail}", file=sys.stderr)
    return rps, p99, served / cpu if cpu > 0 else float("nan")


def interleaved(runs, rounds, measure_one):
    """`rounds` rounds of every run in turn, so that drift during the benchmark touches them
    all alike: for each run, its lists of "rps", "p99" and "eff" (from `measure_one(run)`)."""
    res = {run: {"rps": [], "p99": [], "eff": []} for run in runs}
    for _ in range(rounds):
        for run in runs:
            for key, v in zip(("rps", "p99", "eff"), measure_one(run)):
                res[run][key].append(v)
    return res


def h3_table(name, path, servers, args, pin_load, h3load):
    """HTTP/3 against h2 (same server, same file) and, if present, Caddy; rounds interleaved."""
    tools = {"h3": ("h3load", "h3"), "h2": ("h2load", "https")}
    runs = [(s, proto) for s in servers for proto in tools]
    res = interleaved(runs, args.rounds, lambda run: measure(
        run[0], *tools[run[1]], path, [], args, pin_load, h3load, f"{name} {run[1]}"))
    print(f"\n{name}: h3load -c {H3_CONNS} -m {H3_STREAMS} (1 s warm-up) vs h2load -c 50 -m 10, same server and file")
    header = f"{'server':8} {'h3 req/s':>17} {'h2 req/s':>17} {'h3/h2':>6} {'p99 ms h3/h2':>14} {'req/CPU-s h3/h2':>17} {'peak RSS MiB':>13}"
    print(header)
    print("-" * len(header))
    h3_rps = {}
    for s in servers:
        h3, h2 = res[(s, "h3")], res[(s, "h2")]
        (m3, sp3), (m2, sp2) = stats(h3["rps"]), stats(h2["rps"])
        h3_rps[s.name] = m3
        ratio = m3 / m2 if m2 else float("nan")
        print(f"{s.name:8} {m3:>9.0f} ±{sp3:>4.1f}% {m2:>9.0f} ±{sp2:>4.1f}% {ratio:>6.2f} "
              f"{statistics.median(h3['p99']):>6.2f}/{statistics.median(h2['p99']):<7.2f} "
              f"{statistics.median(h3['eff']):>8.0f}/{statistics.median(h2['eff']):<8.0f} "
              f"{peak_rss_kib(s.pids) / 1024:>8.1f}", flush=True)
    if "caddy" in h3_rps and h3_rps["caddy"]:
        print(f"harrier h3 / caddy h3: {h3_rps['harrier'] / h3_rps['caddy']:.2f}")
    print("target (issue): harrier h3/h2 >= 0.5")


def main():
    global H3_CONNS, H3_STREAMS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--only", nargs="*", help="workload names (substring match)")
    ap.add_argument("--full", action="store_true", help="both servers on the whole machine, unpinned")
    ap.add_argument("--access-log", action="store_true",
                    help="both servers write a combined access log to a file (off by default)")
    ap.add_argument("--no-build", action="store_true", help="use the existing release build of harrier")
    ap.add_argument("--no-caddy", action="store_true", help="HTTP/3 table without the Caddy comparison")
    ap.add_argument("--h3-conns", type=int, default=H3_CONNS, help="h3load connections (default %(default)s)")
    ap.add_argument("--h3-streams", type=int, default=H3_STREAMS,
                    help="h3load concurrent streams per connection (default %(default)s)")
    args = ap.parse_args()
    H3_CONNS, H3_STREAMS = args.h3_conns, args.h3_streams

    selected = [w for w in WORKLOADS if not args.only or any(o in w[0] for o in args.only)]
    tcp_workloads = [w for w in selected if w[1] != "h3load"]
    h3_workloads = [w for w in selected if w[1] == "h3load"]
    ensure_tools()
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=ROOT, check=True)
    h3load = build_h3load() if h3_workloads else None
    caddy = None
    if h3_workloads and not args.no_caddy:
        caddy = ensure_caddy()
        if not caddy:
            print("caddy is not installed (Debian package `caddy`): HTTP/3 table without it", file=sys.stderr)
    pin_server, pin_load = (None, None) if args.full or os.cpu_count() < 2 else ("0", "1")
    workers = os.cpu_count() if args.full else 1

    tmp = tempfile.mkdtemp(prefix="harrier-bench-")
    os.chmod(tmp, 0o755)  # nginx workers run as an unprivileged user and must read the site
    site = os.path.join(tmp, "site")
    make_site(site)
    crt, key = make_cert(tmp)
    os.makedirs(os.path.join(tmp, "n"))
    os.makedirs(os.path.join(tmp, "u"))
    upstream = upstream_server(os.path.join(tmp, "u"), site)
    logs = {name: os.path.join(tmp, f"{name}-access.log") if args.access_log else None
            for name in ("harrier", "nginx")}
    for path in logs.values():
        if path:
            open(path, "wb").close()
    harrier = harrier_server(tmp, site, crt, key, workers, upstream.ports["http"], logs["harrier"])
    servers = [harrier]
    if tcp_workloads:
        servers.append(nginx_server(os.path.join(tmp, "n"), site, crt, key, workers, upstream.ports["http"],
                                    logs["nginx"]))
    if caddy:
        os.makedirs(os.path.join(tmp, "c"))
        servers.append(caddy_server(os.path.join(tmp, "c"), site, crt, key, workers))
    try:
        if any(scheme == "proxy" for _name, _tool, scheme, _path, _extra in tcp_workloads):
            upstream.start(pin_load)
        for s in servers:
            s.start(pin_server)
        print(f"machine: {os.cpu_count()} cores; {'full machine' if args.full else 'server on core 0, load on core 1, one worker each'}; "
              f"{args.rounds} rounds x {args.duration}s per workload and server; "
              f"access logs {'on (combined, to a file)' if args.access_log else 'off'}")
        by_name = {s.name: s for s in servers}
        if tcp_workloads:
            pair = [by_name["harrier"], by_name["nginx"]]
            header = f"{'workload':16} {'harrier req/s':>20} {'nginx req/s':>20} {'ratio':>6} {'p99 ms h/n':>13} {'req/CPU-s h/n':>17} {'peak RSS MiB h/n':>17}"
            print(header)
            print("-" * len(header))
        for name, tool, scheme, path, extra in tcp_workloads:
            res = interleaved(pair, args.rounds,
                              lambda s: measure(s, tool, scheme, path, extra, args, pin_load, None, name))
            h, n = res[pair[0]], res[pair[1]]
            (mh, sh_), (mn, sn) = stats(h["rps"]), stats(n["rps"])
            med = statistics.median
            ratio = mh / mn if mn else float("nan")
            rss = [peak_rss_kib(s.pids) / 1024 for s in pair]
            print(f"{name:16} {mh:>12.0f} ±{sh_:>4.1f}% {mn:>12.0f} ±{sn:>4.1f}% "
                  f"{ratio:>6.2f} {med(h['p99']):>6.2f}/{med(n['p99']):<6.2f} {med(h['eff']):>8.0f}/{med(n['eff']):<8.0f} "
                  f"{rss[0]:>8.1f}/{rss[1]:<8.1f}", flush=True)
        h3_servers = [s for s in servers if s.name in ("harrier", "caddy")]
        for name, _tool, _scheme, path, _extra in h3_workloads:
            h3_table(name, path, h3_servers, args, pin_load, h3load)
    finally:
        for s in servers + [upstream]:
            if hasattr(s, "proc"):
                s.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
