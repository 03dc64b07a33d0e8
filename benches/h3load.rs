//! h3load: an HTTP/3 load generator for harrier's load benchmarks (Debian's h2load has no
//! QUIC). quinn + h3 + h3-quinn, one tokio runtime, bounded in time.
//!
//! ```sh
//! cargo bench --bench h3load -- https://127.0.0.1:8443/1k.bin -c 10 -m 10 -d 5 -w 1 --insecure
//! cargo bench --bench h3load -- https://localhost:8443/ -n 100000 --ca ca.pem
//! ```
//!
//! It opens `-c` QUIC connections (ALPN h3, TLS 1.3, one UDP socket each), then keeps `-m`
//! GET requests in flight on each. Requests that start during the warm-up (`-w`) are not
//! counted; after it, the run lasts `-d` seconds or until `-n` requests completed. It prints
//! a human summary on stderr and one JSON line on stdout (requests/s, body bytes/s, latency
//! percentiles, errors), which `benches/load/run.py` parses.

use std::future::poll_fn;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use clap::Parser;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::time::Instant as TokioInstant;

type SendRequest = h3::client::SendRequest<h3_quinn::OpenStreams, Bytes>;

/// HTTP/3 load generator (GET requests over QUIC).
#[derive(Parser, Debug)]
#[command(name = "h3load")]
struct Args {
    /// Target, e.g. https://127.0.0.1:8443/1k.bin
    url: String,
    /// QUIC connections.
    #[arg(short = 'c', long, default_value_t = 10)]
    connections: usize,
    /// Concurrent requests (streams) per connection.
    #[arg(short = 'm', long = "streams", default_value_t = 10)]
    streams: usize,
    /// Measured duration after the warm-up: seconds, or a humantime value ("5s", "500ms").
    #[arg(short = 'd', long, default_value = "5s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop after this many measured requests instead of after `--duration`.
    #[arg(short = 'n', long)]
    requests: Option<u64>,
    /// Upper bound on the measured phase with `-n`.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    time_limit: Duration,
    /// Warm-up: requests started before it ends are not counted.
    #[arg(short = 'w', long = "warm-up", default_value = "1s", value_parser = parse_duration)]
    warm_up: Duration,
    /// Skip certificate verification (signatures are still checked), for the dev certificate.
    #[arg(long, conflicts_with = "ca")]
    insecure: bool,
    /// Trust the CA certificates in this PEM file.
    #[arg(long)]
    ca: Option<std::path::PathBuf>,
    /// TLS server name (SNI); default: the URL's host.
    #[arg(long)]
    server_name: Option<String>,
    /// Runtime threads (1 = a current-thread runtime, like `h2load -t1`).
    #[arg(short = 't', long, default_value_t = 1)]
    threads: usize,
    /// A request that takes longer counts as an error.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs >= 0.0 => Ok(Duration::from_secs_f64(secs)),
        Ok(_) => Err(format!("bad duration {s:?}")),
        Err(_) => humantime::parse_duration(s).map_err(|e| format!("bad duration {s:?}: {e}")),
    }
}

/// What one worker (or the whole run) saw in the measured phase.
#[derive(Default)]
struct Stats {
    requests: u64,
    /// Completed requests that started during the warm-up (for CPU-per-request figures).
    warm_up_requests: u64,
    body_bytes: u64,
    non_2xx: u64,
    errors: u64,
    /// Latency of every counted request, microseconds.
    latencies_us: Vec<u32>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.requests += other.requests;
        self.warm_up_requests += other.warm_up_requests;
        self.body_bytes += other.body_bytes;
        self.non_2xx += other.non_2xx;
        self.errors += other.errors;
        self.latencies_us.extend(other.latencies_us);
    }
}

/// Settings and clocks every worker shares.
struct Plan {
    uri: http::Uri,
    /// Requests started before this are warm-up.
    measure_from: Instant,
    /// Duration mode: requests not done by then are abandoned and not counted. With `-n`:
    /// the time limit.
    deadline: TokioInstant,
    /// `-n`: measured requests left to start (tickets).
    limit: Option<u64>,
    started: AtomicU64,
    stop: AtomicBool,
    request_timeout: Duration,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("tokio runtime: {e}")),
    };
    match runtime.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn fail(message: &str) -> ExitCode {
    eprintln!("h3load: {message}");
    println!("{}", serde_json::json!({ "error": message }));
    ExitCode::FAILURE
}

async fn run(args: Args) -> Result<ExitCode, String> {
    if args.connections == 0 || args.streams == 0 {
        return Err("--connections and --streams must be at least 1".into());
    }
    let uri: http::Uri = args.url.parse().map_err(|e| format!("bad URL: {e}"))?;
    if uri.scheme_str() != Some("https") {
        return Err("the URL must be https://".into());
    }
    let host = uri.host().ok_or("the URL has no host")?;
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("resolve {host}: {e}"))?
        .next()
        .ok_or_else(|| format!("{host} has no address"))?;
    let server_name = args.server_name.clone().unwrap_or(host);
    let client = client_config(&args)?;

    // Connections first: handshakes are not part of the measurement.
    let handshake_started = Instant::now();
    let mut pending = Vec::with_capacity(args.connections);
    for _ in 0..args.connections {
        let (client, name) = (client.clone(), server_name.clone());
        pending.push(tokio::spawn(
            async move { connect(addr, &name, client).await },
        ));
    }
    let mut conns = Vec::with_capacity(args.connections);
    for p in pending {
        conns.push(p.await.map_err(|e| e.to_string())??);
    }
    let handshakes = handshake_started.elapsed();

    let measure_from = Instant::now() + args.warm_up;
    let length = match args.requests {
        Some(_) => args.time_limit,
        None => args.duration,
    };
    let plan = Arc::new(Plan {
        uri,
        measure_from,
        deadline: TokioInstant::from_std(measure_from + length),
        limit: args.requests,
        started: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        request_timeout: args.request_timeout,
    });
    let mut tasks = Vec::new();
    for conn in conns {
        let (plan, client, name) = (plan.clone(), client.clone(), server_name.clone());
        let streams = args.streams;
        tasks.push(tokio::spawn(async move {
            drive_connection(conn, streams, plan, addr, name, client).await
        }));
    }
    let mut total = Stats::default();
    for t in tasks {
        total.merge(t.await.map_err(|e| e.to_string())?);
    }
    let finished = Instant::now();
    let elapsed = match args.requests {
        // Every measured request finished (or the time limit passed) before the join.
        Some(_) => finished.saturating_duration_since(measure_from),
        None => args.duration,
    }
    .as_secs_f64()
    .max(1e-9);

    report(&args, &mut total, elapsed, handshakes);
    Ok(if total.requests > 0 && total.errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(3)
    })
}

fn report(args: &Args, total: &mut Stats, elapsed: f64, handshakes: Duration) {
    total.latencies_us.sort_unstable();
    let lat = &total.latencies_us;
    let ms = |us: u32| f64::from(us) / 1000.0;
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return f64::NAN;
        }
        let rank = ((p * lat.len() as f64).ceil() as usize).clamp(1, lat.len());
        ms(lat[rank - 1])
    };
    let (p50, p90, p99) = (pct(0.5), pct(0.9), pct(0.99));
    let mean = if lat.is_empty() {
        f64::NAN
    } else {
        lat.iter().map(|&v| f64::from(v)).sum::<f64>() / lat.len() as f64 / 1000.0
    };
    let max = lat.last().map_or(f64::NAN, |&v| ms(v));
    let handshakes_ms = handshakes.as_secs_f64() * 1000.0;
    let rps = total.requests as f64 / elapsed;
    let bps = total.body_bytes as f64 / elapsed;
    eprintln!(
        "h3load: {} connections x {} streams, {:.2}s measured after {:?} warm-up",
        args.connections, args.streams, elapsed, args.warm_up
    );
    eprintln!(
        "  {} requests, {:.0} req/s, {:.2} MB/s body, {} errors, {} non-2xx",
        total.requests,
        rps,
        bps / 1e6,
        total.errors,
        total.non_2xx
    );
    eprintln!(
        "  latency ms: mean {mean:.3} p50 {p50:.3} p90 {p90:.3} p99 {p99:.3} max {max:.3}; \
         handshakes {handshakes_ms:.1} ms"
    );
    let round = |v: f64| (v * 1000.0).round() / 1000.0;
    let json = serde_json::json!({
        "url": args.url,
        "connections": args.connections,
        "streams": args.streams,
        "seconds": round(elapsed),
        "requests": total.requests,
        "warm_up_requests": total.warm_up_requests,
        "rps": round(rps),
        "body_bytes": total.body_bytes,
        "bytes_per_s": round(bps),
        "errors": total.errors,
        "non_2xx": total.non_2xx,
        "latency_ms": {
            "mean": round(mean),
            "p50": round(p50),
            "p90": round(p90),
            "p99": round(p99),
            "max": round(max),
        },
        "handshakes_ms": round(handshakes_ms),
    });
    println!("{json}");
}

/// TLS 1.3 with ALPN h3, trusting `--ca` or (with `--insecure`) any certificate.
fn client_config(args: &Args) -> Result<quinn::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let mut tls = if args.insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let path = args.ca.as_ref().ok_or("give --ca FILE.pem or --insecure")?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| format!("{path:?}: {e}"))? {
            let cert = cert.map_err(|e| format!("{path:?}: {e}"))?;
            roots.add(cert).map_err(|e| format!("{path:?}: {e}"))?;
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    tls.alpn_protocols = vec![b"h3".to_vec()];
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).map_err(|e| e.to_string())?;
    Ok(quinn::ClientConfig::new(Arc::new(crypto)))
}

/// `--insecure`: accepts any certificate, but still checks the handshake signature, so the
/// client does the same cryptographic work as a verifying one (minus the chain).
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algs = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One QUIC + HTTP/3 connection: its own UDP socket, and a task driving the h3 connection.
struct Conn {
    endpoint: quinn::Endpoint,
    quic: quinn::Connection,
    send: SendRequest,
    driver: tokio::task::JoinHandle<()>,
}

impl Conn {
    fn close(self) {
        self.driver.abort();
        self.quic.close(0u32.into(), b"done");
        // Let the CONNECTION_CLOSE go out; the endpoint's task sends it.
        drop(self.send);
        let endpoint = self.endpoint;
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_millis(200), endpoint.wait_idle()).await;
        });
    }
}

async fn connect(
    addr: SocketAddr,
    server_name: &str,
    client: quinn::ClientConfig,
) -> Result<Conn, String> {
    let bind: SocketAddr = match addr {
        SocketAddr::V4(_) => ([0, 0, 0, 0], 0).into(),
        SocketAddr::V6(_) => ([0u16; 8], 0).into(),
    };
    let mut endpoint = quinn::Endpoint::client(bind).map_err(|e| format!("UDP socket: {e}"))?;
    endpoint.set_default_client_config(client);
    let step = Duration::from_secs(10);
    let connecting = endpoint
        .connect(addr, server_name)
        .map_err(|e| format!("connect {addr}: {e}"))?;
    let quic = tokio::time::timeout(step, connecting)
        .await
        .map_err(|_| format!("QUIC handshake with {addr} timed out"))?
        .map_err(|e| format!("QUIC handshake with {addr}: {e}"))?;
    let (mut driver, send) = tokio::time::timeout(
        step,
        h3::client::new(h3_quinn::Connection::new(quic.clone())),
    )
    .await
    .map_err(|_| "HTTP/3 setup timed out".to_owned())?
    .map_err(|e| format!("HTTP/3 setup: {e}"))?;
    let driver = tokio::spawn(async move {
        let _ = poll_fn(|cx| driver.poll_close(cx)).await;
    });
    Ok(Conn {
        endpoint,
        quic,
        send,
        driver,
    })
}

/// Runs `streams` workers on `conn`; if the connection dies before the run is over, counts
/// an error and reconnects.
async fn drive_connection(
    mut conn: Conn,
    streams: usize,
    plan: Arc<Plan>,
    addr: SocketAddr,
    server_name: String,
    client: quinn::ClientConfig,
) -> Stats {
    let mut total = Stats::default();
    loop {
        let workers: Vec<_> = (0..streams)
            .map(|_| tokio::spawn(worker(conn.send.clone(), plan.clone())))
            .collect();
        for w in workers {
            if let Ok(stats) = w.await {
                total.merge(stats);
            }
        }
        // Workers stop early only when the connection is closing or gone.
        conn.close();
        if done(&plan) {
            return total;
        }
        total.errors += 1;
        loop {
            if done(&plan) {
                return total;
            }
            match connect(addr, &server_name, client.clone()).await {
                Ok(c) => {
                    conn = c;
                    break;
                }
                Err(e) => {
                    eprintln!("h3load: reconnect: {e}");
                    total.errors += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

fn done(plan: &Plan) -> bool {
    plan.stop.load(Ordering::Relaxed) || TokioInstant::now() >= plan.deadline
}

/// Keeps one request in flight until the run is over or the connection dies.
async fn worker(mut send: SendRequest, plan: Arc<Plan>) -> Stats {
    let mut stats = Stats::default();
    while !done(&plan) {
        let started = Instant::now();
        let measured = started >= plan.measure_from;
        if measured {
            if let Some(limit) = plan.limit {
                if plan.started.fetch_add(1, Ordering::Relaxed) >= limit {
                    plan.stop.store(true, Ordering::Relaxed);
                    break;
                }
            }
        }
        let limit = TokioInstant::from_std(started + plan.request_timeout);
        let outcome = tokio::select! {
            r = get(&mut send, &plan.uri) => Some(r),
            _ = tokio::time::sleep_until(limit.min(plan.deadline)) => None,
        };
        let latency = started.elapsed();
        match outcome {
            // The run ended with this request in flight: not counted.
            None if TokioInstant::now() >= plan.deadline => break,
            None => stats.errors += u64::from(measured),
            Some(Ok((status, bytes))) => {
                if measured {
                    stats.requests += 1;
                    stats.body_bytes += bytes;
                    stats.non_2xx += u64::from(!status.is_success());
                    let us = latency.as_micros().min(u128::from(u32::MAX)) as u32;
                    stats.latencies_us.push(us);
                } else {
                    stats.warm_up_requests += 1;
                }
            }
            Some(Err(e)) => {
                stats.errors += u64::from(measured);
                if send_closed(&e) {
                    break;
                }
            }
        }
    }
    stats
}

/// Whether the error means the connection is closing or gone (not just one stream failing).
fn send_closed(e: &h3::error::StreamError) -> bool {
    use h3::error::StreamError;
    matches!(
        e,
        StreamError::ConnectionError { .. } | StreamError::RemoteClosing { .. }
    )
}

/// One GET: the request, then the whole response body. Returns the status and body length.
async fn get(
    send: &mut SendRequest,
    uri: &http::Uri,
) -> Result<(http::StatusCode, u64), h3::error::StreamError> {
    let req = http::Request::get(uri.clone())
        .body(())
        .expect("a GET with a valid URI");
    let mut stream = send.send_request(req).await?;
    stream.finish().await?;
    let head = stream.recv_response().await?;
    let mut bytes = 0u64;
    while let Some(chunk) = stream.recv_data().await? {
        bytes += chunk.remaining() as u64;
    }
    Ok((head.status(), bytes))
}
