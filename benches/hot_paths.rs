//! Criterion micro-benchmarks of the per-request hot paths: route matching, pipeline
//! dispatch, a static-file cache hit, the HTTP/1.1 head scanner and request-path
//! normalisation.
//!
//! ```sh
//! cargo bench --bench hot_paths -- --warm-up-time 1 --measurement-time 2
//! cargo bench --bench hot_paths -- route_match      # one group
//! ```

use std::hint::black_box;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use harrier::body::{self, Body};
use harrier::config::{self, Config, LoadOptions, PathPattern, RouteMatch};
use harrier::handlers::static_files::{decode_path, Rules, StaticFiles};
use harrier::limits::{HeadLimits, HeadScanner, Verdict};
use harrier::pipeline::{ConnInfo, EndpointInfo, Matcher, Router};
use http::{HeaderName, Method, Request, Response, StatusCode};
use http_body_util::BodyExt;

/// A typical browser GET head, about 400 bytes.
const HEAD: &[u8] = b"GET /assets/js/app.min.js?v=3 HTTP/1.1\r\n\
Host: www.example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Referer: https://www.example.com/\r\n\
Connection: keep-alive\r\n\
Cookie: session=4f2a9c81d7e34b6b; theme=dark\r\n\
Sec-Fetch-Dest: script\r\n\
Sec-Fetch-Mode: no-cors\r\n\
Sec-Fetch-Site: same-origin\r\n\
\r\n";

/// Twenty routes of the kinds a site has: exact paths, prefixes, globs, method and header
/// conditions. The last one is a catch-all.
fn routes() -> Vec<RouteMatch> {
    let path = |p: PathPattern| RouteMatch {
        path: Some(p),
        ..RouteMatch::default()
    };
    let exact = |s: &str| path(PathPattern::Exact(s.into()));
    let prefix = |s: &str| path(PathPattern::Prefix(s.into()));
    let glob = |s: &str| path(PathPattern::Glob(s.into()));
    vec![
        exact("/healthz"),
        exact("/readyz"),
        exact("/robots.txt"),
        exact("/favicon.ico"),
        RouteMatch {
            methods: vec![Method::POST],
            ..prefix("/api/upload")
        },
        RouteMatch {
            headers: vec![(HeaderName::from_static("x-debug"), None)],
            ..prefix("/api")
        },
        prefix("/api/v1/users"),
        prefix("/api/v1/orders"),
        prefix("/api/v2"),
        prefix("/old"),
        prefix("/admin"),
        glob("/blog/*/comments"),
        glob("/docs/**/*.md"),
        glob("/images/*.png"),
        glob("/images/*.webp"),
        RouteMatch {
            query: vec![("preview".into(), Some("1".into()))],
            ..prefix("/pages")
        },
        prefix("/downloads"),
        glob("/assets/**/*.css"),
        glob("/assets/**/*.js"),
        RouteMatch::default(),
    ]
}

fn get(uri: &str) -> Request<()> {
    Request::get(uri).body(()).expect("request")
}

/// First-match lookup over the compiled routes, as the router does.
fn first_match(matchers: &[Matcher], req: &Request<()>) -> Option<(usize, Vec<String>)> {
    matchers
        .iter()
        .enumerate()
        .find_map(|(i, m)| m.matches(req).map(|caps| (i, caps)))
}

fn route_match(c: &mut Criterion) {
    let matchers: Vec<Matcher> = routes().iter().map(Matcher::new).collect();
    let cases = [
        ("first_exact", "/healthz", 0),
        ("prefix_7th", "/api/v1/users/42", 6),
        ("glob_13th", "/docs/guide/setup/install.md", 12),
        ("glob_19th", "/assets/vendor/lib/app.min.js?v=3", 18),
        ("catch_all_20th", "/about/team.html", 19),
    ];
    let mut group = c.benchmark_group("route_match");
    for (name, uri, want) in cases {
        let req = get(uri);
        assert_eq!(
            first_match(&matchers, &req).map(|m| m.0),
            Some(want),
            "{uri}"
        );
        group.bench_function(name, |b| {
            b.iter(|| first_match(black_box(&matchers), black_box(&req)))
        });
    }
    group.finish();
}

/// The settings for the dispatch benchmark: one site with two stages in front of twenty
/// routes, the last answered by `respond`.
const SITE: &str = r#"
[[sites]]
hosts = ["*"]

[[sites.use]]
type = "request_filter"
max_url_length = 2048
deny_path_segments = [".git"]
deny_extensions = [".env"]

[[sites.use]]
type = "headers"
response = { set = { "x-frame-options" = "DENY", "x-content-type-options" = "nosniff" } }
"#;

fn site_toml() -> String {
    let mut toml = SITE.to_owned();
    for i in 0..19 {
        toml.push_str(&format!(
            "\n[[sites.routes]]\npath = \"/r{i}/*\"\nhandler = {{ type = \"respond\", status = 200, body = \"r{i}\" }}\n"
        ));
    }
    toml.push_str(
        "\n[[sites.routes]]\npath = \"/hello\"\nuse = [{ type = \"headers\", response = { set = { \"cache-control\" = \"no-store\" } } }]\nhandler = { type = \"respond\", status = 200, body = \"Hello, World!\" }\n",
    );
    toml
}

fn load(dir: &Path, toml: &str) -> Config {
    let opts = LoadOptions {
        app_dir: dir.to_path_buf(),
        listen: vec!["http://127.0.0.1:0".into()],
        ..LoadOptions::default()
    };
    config::load_str(toml, &dir.join("harrier.toml"), &opts).expect("config loads")
}

fn conn_info() -> Arc<ConnInfo> {
    Arc::new(ConnInfo {
        remote: Some(SocketAddr::from(([127, 0, 0, 1], 40000))),
        endpoint: Arc::new(EndpointInfo {
            url: "http://127.0.0.1:8080".into(),
            ..EndpointInfo::default()
        }),
        tls: None,
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The status and body length of `resp`, reading the whole body as a client would.
async fn read(resp: Response<Body>) -> (StatusCode, usize) {
    let status = resp.status();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, body.len())
}

/// Runs `req` through `router` and reads the whole response body.
async fn answer(router: &Router, req: Request<Body>) -> (StatusCode, usize) {
    read(router.route(req).await).await
}

fn pipeline_dispatch(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = load(dir.path(), &site_toml());
    let apps = harrier::apps::Apps::new(&cfg.apps);
    let router = Router::from_config(&cfg, &apps).expect("router");
    let info = conn_info();
    let request = |uri: &str| {
        let mut req = Request::get(uri)
            .header("host", "www.example.com")
            .header("user-agent", "bench")
            .body(body::empty())
            .expect("request");
        req.extensions_mut().insert(info.clone());
        req
    };
    let rt = runtime();
    assert_eq!(
        rt.block_on(answer(&router, request("/hello"))),
        (StatusCode::OK, 13)
    );
    let mut group = c.benchmark_group("pipeline_dispatch");
    group.bench_function("respond_20th_route_2_stages", |b| {
        b.iter(|| rt.block_on(answer(&router, request(black_box("/hello")))))
    });
    group.bench_function("respond_1st_route_2_stages", |b| {
        b.iter(|| rt.block_on(answer(&router, request(black_box("/r0/x")))))
    });
    group.bench_function("request_construction_only", |b| {
        b.iter(|| request(black_box("/hello")))
    });
    group.finish();
}

fn static_cache_hit(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("assets/js")).expect("mkdir");
    std::fs::write(dir.path().join("13.txt"), "Hello, World!").expect("write");
    std::fs::write(dir.path().join("assets/js/app.js"), vec![b'x'; 1024]).expect("write");
    let cfg = load(dir.path(), "");
    let files = StaticFiles::new(&cfg.static_files, true).expect("static files");
    let rt = runtime();
    let files = &files;
    let serve = |req: Request<()>| async move { read(files.serve(&req).await).await };
    let mut group = c.benchmark_group("static_cache_hit");
    for (name, uri, len) in [
        ("13B", "/13.txt", 13),
        ("1KiB_nested", "/assets/js/app.js", 1024),
    ] {
        // The first request fills the cache; the measured ones are hits.
        assert_eq!(rt.block_on(serve(get(uri))), (StatusCode::OK, len));
        group.bench_function(name, |b| b.iter(|| rt.block_on(serve(get(black_box(uri))))));
    }
    let etag = rt.block_on(files.serve(&get("/13.txt"))).headers()["etag"].clone();
    let conditional = || {
        Request::get("/13.txt")
            .header("if-none-match", etag.clone())
            .body(())
            .expect("request")
    };
    assert_eq!(
        rt.block_on(serve(conditional())),
        (StatusCode::NOT_MODIFIED, 0)
    );
    group.bench_function("13B_if_none_match_304", |b| {
        b.iter(|| rt.block_on(serve(black_box(conditional()))))
    });
    group.finish();
}

fn head_scan(c: &mut Criterion) {
    let limits = HeadLimits {
        max_request_line_size: 8 * 1024,
        max_header_count: 100,
        max_headers_total_size: 32 * 1024,
    };
    let mut group = c.benchmark_group("head_scan");
    group.throughput(Throughput::Bytes(HEAD.len() as u64));
    // Keep-alive: the same scanner sees one head after another.
    let mut scanner = HeadScanner::new(limits);
    assert_eq!(scanner.feed(HEAD), Verdict::Ok);
    assert!(!scanner.in_head());
    group.bench_function(format!("{}B_head_keep_alive", HEAD.len()), |b| {
        b.iter(|| scanner.feed(black_box(HEAD)))
    });
    group.bench_function(format!("{}B_head_new_connection", HEAD.len()), |b| {
        b.iter(|| HeadScanner::new(limits).feed(black_box(HEAD)))
    });
    group.finish();
}

fn path_normalise(c: &mut Criterion) {
    let rules = Rules {
        hidden_ok: false,
        windows: false,
    };
    let cases = [
        ("plain_borrowed", "/assets/js/vendor/app.min.js"),
        (
            "percent_encoded",
            "/docs/caf%C3%A9/r%C3%A9sum%C3%A9%20final.html",
        ),
        ("double_slashes", "//assets//js/app.js"),
        ("rejected_dot_dot", "/assets/%2e%2e/secret"),
    ];
    let mut group = c.benchmark_group("path_normalise");
    for (name, path) in cases {
        group.bench_function(name, |b| {
            b.iter(|| decode_path(black_box(path), rules).is_ok())
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    route_match,
    pipeline_dispatch,
    static_cache_hit,
    head_scan,
    path_normalise
);
criterion_main!(benches);
