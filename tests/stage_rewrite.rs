//! The `rewrite` stage over real sockets, on HTTP/1.1 and HTTP/2: rewrites with captures to
//! static files, redirects with `{C:n}`/`{R:n}`, file checks (SPA fallback), `any`
//! conditions, chaining and `stop_processing`, custom responses and abort.

mod common;

use common::*;
use reqwest::{redirect::Policy, Client, StatusCode, Version};

const SETTINGS: &str = r#"
[[sites]]
hosts = ["*"]
root = "www"

[[sites.use]]
type = "rewrite"

[[sites.use.rules]]
name = "canonical host"
match = "^/(.*)$"
conditions = [{ input = "{HTTP_HOST}", pattern = "^www\\.(.+)$" }]
action = { type = "redirect", url = "http://{C:1}/{R:1}", status = 301 }

[[sites.use.rules]]
name = "blocked"
match = ".*"
logical_grouping = "any"
conditions = [
  { input = "{HTTP_X_BLOCK}", pattern = "^yes$" },
  { input = "{QUERY_STRING}", pattern = "(^|&)debug=1" },
]
action = { type = "custom_response", status = 403 }

[[sites.use.rules]]
match = "^/drop$"
action = { type = "abort" }

[[sites.use.rules]]
match = "^/q1$"
action = { type = "redirect", url = "/r?x=1", status = 302 }

[[sites.use.rules]]
match = "^/q2$"
action = { type = "redirect", url = "/r", status = 307, append_query_string = false }

[[sites.use.rules]]
name = "product"
match = "^/product/(\\d+)/(\\w+)$"
action = { type = "rewrite", url = "/items/{R:2}-{R:1}.txt" }
stop_processing = true

[[sites.use.rules]]
match = "^/a$"
action = { type = "rewrite", url = "/b" }

[[sites.use.rules]]
match = "^/b$"
action = { type = "rewrite", url = "/c.txt" }

[[sites.use.rules]]
match = "^/q/keep$"
action = { type = "rewrite", url = "/shown" }

[[sites.use.rules]]
match = "^/q/drop$"
action = { type = "rewrite", url = "/shown", append_query_string = false }

[[sites.use.rules]]
match = "^/q/own$"
action = { type = "rewrite", url = "/shown?x=1" }

[[sites.use.rules]]
match = "^/shown$"
action = { type = "redirect", url = "/seen?q={QUERY_STRING}", status = 302, append_query_string = false }

[[sites.use.rules]]
match = "^/x$"
action = { type = "rewrite", url = "/y.txt" }
stop_processing = true

[[sites.use.rules]]
match = "^/y\\.txt$"
action = { type = "rewrite", url = "/z.txt" }

[[sites.use.rules]]
name = "spa"
match = "^/app/"
ignore_case = false
conditions = [
  { input = "{REQUEST_FILENAME}", is_file = false },
  { input = "{REQUEST_FILENAME}", is_directory = false },
]
action = { type = "rewrite", url = "/app/index.html" }

[[sites.routes]]
path = "/legacy/*"
use = [{ type = "rewrite", rules = [{ match = "^/legacy/(.+)$", action = { type = "rewrite", url = "/{R:1}" } }] }]
handler = { type = "static" }
"#;

const FILES: &[(&str, &[u8])] = &[
    ("www/items/blue-42.txt", b"BLUE 42"),
    ("www/c.txt", b"C"),
    ("www/y.txt", b"Y"),
    ("www/z.txt", b"Z"),
    ("www/app/index.html", b"SPA INDEX"),
    ("www/app/main.js", b"MAIN JS"),
    ("www/app/assets/logo.txt", b"LOGO"),
];

/// One client per protocol; redirects are not followed, and `example.test`, `example.com`
/// and their `www.` names resolve to the server.
fn clients(server: &TestServer) -> [Client; 2] {
    let build = |h2: bool| {
        let mut b = Client::builder().redirect(Policy::none()).timeout(STEP);
        for name in ["example.test", "example.com"] {
            b = b
                .resolve(name, server.addr)
                .resolve(&format!("www.{name}"), server.addr);
        }
        if h2 {
            b = b.http2_prior_knowledge();
        }
        b.build().expect("client")
    };
    [build(false), build(true)]
}

async fn get(
    client: &Client,
    url: String,
) -> (StatusCode, Version, reqwest::header::HeaderMap, String) {
    let resp = client.get(url).send().await.expect("response");
    let (status, version, headers) = (resp.status(), resp.version(), resp.headers().clone());
    (status, version, headers, resp.text().await.expect("body"))
}

#[tokio::test]
async fn rewrites_with_captures_chain_and_stop() {
    let server = start(SETTINGS, FILES).await;
    for (client, version) in clients(&server)
        .iter()
        .zip([Version::HTTP_11, Version::HTTP_2])
    {
        let (status, v, _, body) = get(client, server.url("/product/42/blue")).await;
        assert_eq!(
            (status, v, body.as_str()),
            (StatusCode::OK, version, "BLUE 42")
        );
        // No rule for this shape: the static handler answers 404 for the original path.
        let (status, ..) = get(client, server.url("/product/x/blue")).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        // /a → /b → /c.txt: rewrites chain into later rules.
        let (status, _, _, body) = get(client, server.url("/a")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "C"));
        // /x → /y.txt, and stop_processing keeps the /y.txt → /z.txt rule from running.
        let (_, _, _, body) = get(client, server.url("/x")).await;
        assert_eq!(body, "Y");
        let (_, _, _, body) = get(client, server.url("/y.txt")).await;
        assert_eq!(body, "Z", "the later rule does apply to /y.txt itself");
        // A route's own rewrite stage: its handler serves the new path.
        let (status, _, _, body) = get(client, server.url("/legacy/c.txt")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "C"));
    }
}

#[tokio::test]
async fn redirect_uses_condition_and_rule_groups() {
    let server = start(SETTINGS, FILES).await;
    let port = server.addr.port();
    for client in &clients(&server) {
        let url = format!("http://www.example.test:{port}/docs/page?lang=en");
        let (status, _, headers, _) = get(client, url).await;
        assert_eq!(status, StatusCode::MOVED_PERMANENTLY);
        assert_eq!(
            headers["location"], "http://example.test/docs/page?lang=en",
            "{{C:1}} from the host, {{R:1}} from the path, the query appended"
        );
        // The original query follows the target's own, unless append_query_string = false.
        let (status, _, headers, _) = get(client, server.url("/q1?a=b")).await;
        assert_eq!(status, StatusCode::FOUND);
        assert_eq!(headers["location"], "/r?x=1&a=b");
        let (status, _, headers, _) = get(client, server.url("/q2?a=b")).await;
        assert_eq!(status, StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(headers["location"], "/r");
        // Without www. the condition fails and the request is served.
        let url = format!("http://example.test:{port}/c.txt");
        let (status, _, _, body) = get(client, url).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "C"));
    }
}

/// A rewrite's query is the target's own, then the current one unless
/// `append_query_string = false`; later rules see it as `{QUERY_STRING}`.
#[tokio::test]
async fn rewrites_keep_or_drop_the_query() {
    let server = start(SETTINGS, FILES).await;
    for client in &clients(&server) {
        for (path, location) in [
            ("/q/keep?a=b", "/seen?q=a=b"),
            ("/q/drop?a=b", "/seen?q="),
            ("/q/own?a=b", "/seen?q=x=1&a=b"),
            ("/q/own", "/seen?q=x=1"),
        ] {
            let (status, _, headers, _) = get(client, server.url(path)).await;
            assert_eq!(status, StatusCode::FOUND, "{path}");
            assert_eq!(headers["location"], location, "{path}");
        }
    }
}

#[tokio::test]
async fn spa_fallback_only_for_paths_that_are_not_files() {
    let server = start(SETTINGS, FILES).await;
    for client in &clients(&server) {
        let (_, _, _, body) = get(client, server.url("/app/main.js")).await;
        assert_eq!(body, "MAIN JS");
        let (status, _, _, body) = get(client, server.url("/app/settings/profile")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "SPA INDEX"));
        // A directory is left to the static handler (no index there: not the SPA page).
        let (_, _, _, body) = get(client, server.url("/app/assets/")).await;
        assert_ne!(body, "SPA INDEX");
        let (_, _, _, body) = get(client, server.url("/app/assets/logo.txt")).await;
        assert_eq!(body, "LOGO");
    }
}

#[tokio::test]
async fn dot_dot_is_never_a_file() {
    let server = start(SETTINGS, FILES).await;
    // Raw bytes: clients normalise `%2e%2e` away. `..` is refused as a file name, so the
    // is_file check says "not a file" and the SPA page answers.
    let req = b"GET /app/%2e%2e/c.txt HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    let resp = exchange(server.addr, req).await;
    assert!(resp.ends_with("SPA INDEX"), "{resp}");
}

#[tokio::test]
async fn any_grouping_and_custom_response() {
    let server = start(SETTINGS, FILES).await;
    for client in &clients(&server) {
        let (status, ..) = get(client, server.url("/c.txt?debug=1")).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "second condition alone");
        let resp = client
            .get(server.url("/c.txt"))
            .header("x-block", "yes")
            .send()
            .await
            .expect("response");
        assert_eq!(
            resp.status(),
            StatusCode::FORBIDDEN,
            "first condition alone"
        );
        let (status, _, _, body) = get(client, server.url("/c.txt?debug=0")).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "C"), "neither");
    }
}

#[tokio::test]
async fn abort_gives_no_response() {
    let server = start(SETTINGS, FILES).await;
    for client in &clients(&server) {
        let outcome = match client.get(server.url("/drop")).send().await {
            Ok(resp) => resp.bytes().await.map(|_| ()),
            Err(e) => Err(e),
        };
        assert!(outcome.is_err(), "aborted requests do not complete");
        // The server is still fine afterwards.
        let (status, ..) = get(client, server.url("/c.txt")).await;
        assert_eq!(status, StatusCode::OK);
    }
}

/// `config/examples/rewrite-recipes.toml` does what its comments say, each recipe for the
/// request it is written for, without getting in the way of the others.
#[tokio::test]
async fn the_documented_recipes_do_what_they_say() {
    let recipes = include_str!("../config/examples/rewrite-recipes.toml");
    let files: &[(&str, &[u8])] = &[
        ("app/dist/index.html", b"SPA"),
        ("app/dist/about.html", b"ABOUT"),
        ("app/dist/docs/index.html", b"DOCS"),
        ("app/dist/app.js", b"JS"),
        ("app/dist/.env", b"SECRET"),
    ];
    let server = start(recipes, files).await;
    let port = server.addr.port();
    let url = |host: &str, path: &str| format!("http://{host}:{port}{path}");
    for client in &clients(&server) {
        let redirects = [
            (
                url("www.example.com", "/a/b?q=1"),
                StatusCode::MOVED_PERMANENTLY,
                "https://example.com/a/b?q=1",
            ),
            (
                url("example.com", "/blog/2024/hello?x=1"),
                StatusCode::PERMANENT_REDIRECT,
                "/posts/hello?x=1",
            ),
            (
                url("example.com", "/docs"),
                StatusCode::MOVED_PERMANENTLY,
                "/docs/",
            ),
        ];
        for (url, status, location) in redirects {
            let (got, _, headers, _) = get(client, url.clone()).await;
            assert_eq!(got, status, "{url}");
            assert_eq!(headers["location"], location, "{url}");
        }
        for (path, status, body) in [
            ("/docs/", StatusCode::OK, "DOCS"),
            ("/about", StatusCode::OK, "ABOUT"),
            ("/app.js", StatusCode::OK, "JS"),
            ("/settings/profile", StatusCode::OK, "SPA"),
            ("/", StatusCode::OK, "SPA"),
        ] {
            let (got, _, _, text) = get(client, url("example.com", path)).await;
            assert_eq!((got, text.as_str()), (status, body), "{path}");
        }
        // Dotfiles get the custom 404; API paths are not the SPA's (the negated match).
        for path in ["/.env", "/api/users"] {
            let (got, _, _, text) = get(client, url("example.com", path)).await;
            assert_eq!(got, StatusCode::NOT_FOUND, "{path}");
            assert!(!text.contains("SECRET") && text != "SPA", "{path}: {text}");
        }
    }
}

/// A condition's `{R:n}` is checked against the rule's groups as the action's url is: a
/// group the match does not have stops the loading instead of reading as "" per request.
#[test]
fn templates_may_only_use_the_groups_the_match_has() {
    let dir = tempfile::tempdir().unwrap();
    let toml = r#"
[[sites]]
hosts = ["*"]
[[sites.use]]
type = "rewrite"
[[sites.use.rules]]
match = "^/a/(.*)$"
conditions = [{ input = "{R:1}", pattern = "x" }, { input = "{R:2}", pattern = "y" }]
action = { type = "rewrite", url = "/{R:1}" }
"#;
    let opts = harrier::config::LoadOptions::default();
    let err = match harrier::config::load_str(toml, &dir.path().join("harrier.toml"), &opts) {
        Ok(_) => panic!("loaded a condition using a group the match lacks"),
        Err(e) => e.to_string(),
    };
    assert!(
        err.contains("rules[0].conditions[1].input: {R:2}: the rule's match has 1 group(s)"),
        "{err}"
    );
    assert!(!err.contains("conditions[0]"), "{err}");
}
