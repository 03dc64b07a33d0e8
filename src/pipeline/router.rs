//! Site selection (Host, endpoint) and route matching: from a request to the chain that
//! answers it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::{Request, StatusCode};

use super::chain::{Chain, Middleware};
use super::endpoint_rules::host_of;
use super::matcher::Matcher;
use super::template::Template;
use super::{error_response, handler_fn, ConnInfo, Handler, HandlerFuture};
use crate::body::Body;
use crate::config::{
    Config, HandlerConfig, HeadersStage, HostPattern, SiteConfig, StageConfig, StaticConfig,
    UnknownHost,
};
use crate::handlers::proxy::upgrade::UpgradeLimit;
use crate::handlers::proxy::Proxy;
use crate::handlers::static_files::StaticFiles;

/// Why the pipeline could not be built from the config.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct BuildError {
    /// The site, route or stage concerned.
    pub what: String,
    /// What went wrong.
    pub message: String,
}

/// The captures of the route that matched (`{1}`...), in the request's extensions; absent
/// when the route's path captured nothing.
#[derive(Debug, Clone)]
pub struct RouteCaptures(pub Vec<String>);

struct Site {
    endpoints: Vec<String>,
    /// The site's stages in front of the route dispatch: they run before a route is chosen,
    /// so a `rewrite` or `forwarded_headers` stage affects which route matches.
    chain: Chain,
}

/// A site's routes and what answers when none matches.
struct Routes {
    routes: Vec<(Matcher, Chain)>,
    fallback: Handler,
}

impl Routes {
    fn dispatch(&self, mut req: Request<Body>) -> HandlerFuture {
        for (matcher, chain) in &self.routes {
            if let Some(captures) = matcher.matches(&req) {
                // No captures, no extension: readers take its absence as none, and an
                // exact route costs no allocation.
                if !captures.is_empty() {
                    req.extensions_mut().insert(RouteCaptures(captures));
                }
                return chain.run(req);
            }
        }
        (self.fallback)(req)
    }
}

/// All sites of a server, indexed by host.
pub struct Router {
    sites: Vec<Site>,
    exact: HashMap<String, Vec<usize>>,
    /// `(".example.com", site)`, longest suffix first.
    wildcard: Vec<(String, usize)>,
    any: Vec<usize>,
    unknown: UnknownHost,
    /// One site for every host and endpoint: no host lookup needed.
    single: bool,
}

impl Router {
    /// One site for any host, answered by `handler` (embedding, like Kestrel's `app.Run`).
    pub fn single(handler: Handler) -> Router {
        let site = Site {
            endpoints: Vec::new(),
            chain: Chain::new(Vec::new(), handler),
        };
        Router {
            sites: vec![site],
            exact: HashMap::new(),
            wildcard: Vec::new(),
            any: vec![0],
            unknown: UnknownHost::Misdirected,
            single: true,
        }
    }

    /// The sites of `config`; with no `[[sites]]`, one site serving `[static]` for any host.
    pub fn from_config(config: &Config, apps: &crate::apps::Apps) -> Result<Router, BuildError> {
        if config.sites.is_empty() {
            let server_header = config.server.add_server_header;
            let handler =
                static_handler(&config.static_files, server_header).map_err(|message| {
                    BuildError {
                        what: format!("static.root {}", config.static_files.root.display()),
                        message,
                    }
                })?;
            return Ok(Router::single(handler));
        }
        let mut router = Router {
            sites: Vec::with_capacity(config.sites.len()),
            exact: HashMap::new(),
            wildcard: Vec::new(),
            any: Vec::new(),
            unknown: config.server.unknown_host,
            single: false,
        };
        let ctx = BuildContext {
            apps,
            app_configs: &config.apps,
            upgrades: UpgradeLimit::new(config.limits.max_concurrent_upgraded_connections),
            server_header: config.server.add_server_header,
        };
        for (i, site) in config.sites.iter().enumerate() {
            router.sites.push(build_site(i, site, &ctx)?);
            for host in &site.hosts {
                match host {
                    HostPattern::Any => router.any.push(i),
                    HostPattern::Exact(h) => router.exact.entry(h.clone()).or_default().push(i),
                    HostPattern::Wildcard(suffix) => router.wildcard.push((suffix.clone(), i)),
                }
            }
        }
        router
            .wildcard
            .sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        router.single =
            router.sites.len() == 1 && router.any == [0] && router.sites[0].endpoints.is_empty();
        Ok(router)
    }

    /// Answers `req` with the matching site's first matching route, or its static files.
    pub fn route(&self, req: Request<Body>) -> HandlerFuture {
        let site = if self.single {
            &self.sites[0]
        } else {
            match self.site_for(&req) {
                Some(site) => site,
                None => {
                    let status = match self.unknown {
                        UnknownHost::Misdirected => StatusCode::MISDIRECTED_REQUEST,
                        UnknownHost::NotFound => StatusCode::NOT_FOUND,
                    };
                    return Box::pin(std::future::ready(error_response(status)));
                }
            }
        };
        site.chain.run(req)
    }

    fn site_for<B>(&self, req: &Request<B>) -> Option<&Site> {
        let conn = ConnInfo::of(req);
        let endpoint = conn.as_ref().and_then(|c| c.endpoint.name.as_deref());
        let serves = |i: &usize| {
            let site = &self.sites[*i];
            site.endpoints.is_empty()
                || endpoint.is_some_and(|e| site.endpoints.iter().any(|s| s == e))
        };
        let host = host_of(req);
        let by_host = host.as_deref().and_then(|h| {
            self.exact
                .get(h)
                .and_then(|list| list.iter().find(|i| serves(i)).copied())
                .or_else(|| {
                    self.wildcard
                        .iter()
                        .find(|(suffix, i)| {
                            h.ends_with(suffix.as_str()) && h.len() > suffix.len() && serves(i)
                        })
                        .map(|(_, i)| *i)
                })
        });
        by_host
            .or_else(|| self.any.iter().find(|i| serves(i)).copied())
            .map(|i| &self.sites[i])
    }
}

/// What building handlers needs beyond the site itself.
struct BuildContext<'a> {
    apps: &'a crate::apps::Apps,
    app_configs: &'a [crate::config::AppConfig],
    /// One count of upgraded connections for the whole server.
    upgrades: Arc<UpgradeLimit>,
    /// `server.add_server_header`, built into static file answers.
    server_header: bool,
}

fn build_site(i: usize, site: &SiteConfig, ctx: &BuildContext<'_>) -> Result<Site, BuildError> {
    let name = site.name.clone().unwrap_or_else(|| format!("sites[{i}]"));
    let err = |what: String| move |message: String| BuildError { what, message };
    let site_stages = site
        .middleware
        .iter()
        .map(|s| stage(s, &site.static_files.root))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err(format!("{name}.use")))?;
    let site_static = static_handler(&site.static_files, ctx.server_header)
        .map_err(err(format!("{name}.root")))?;
    let mut routes = Vec::with_capacity(site.routes.len());
    for (r, route) in site.routes.iter().enumerate() {
        let what = format!("{name}.routes[{r}]");
        let mut stages = Vec::with_capacity(route.middleware.len());
        for s in &route.middleware {
            stages.push(stage(s, &site.static_files.root).map_err(err(what.clone()))?);
        }
        let handler = match &route.handler {
            HandlerConfig::Static(cfg) if *cfg == site.static_files => Arc::clone(&site_static),
            HandlerConfig::Static(cfg) => {
                static_handler(cfg, ctx.server_header).map_err(err(what.clone()))?
            }
            HandlerConfig::Redirect { status, to } => crate::handlers::redirect::redirect(
                *status,
                Template::parse(to).map_err(err(what.clone()))?,
            ),
            HandlerConfig::Respond {
                status,
                headers,
                body,
            } => crate::handlers::respond::respond(*status, headers, body, ctx.server_header),
            HandlerConfig::Proxy(cfg) => {
                let proxy = Proxy::fixed(cfg, Arc::clone(&ctx.upgrades))
                    .map_err(|e| err(what.clone())(e.to_string()))?;
                proxy_handler(proxy, cfg, &mut stages).map_err(err(what.clone()))?
            }
            HandlerConfig::App { app, proxy: cfg } => {
                let no_app = || err(what.clone())(format!("no [[apps]] entry is called {app:?}"));
                let wait = ctx
                    .app_configs
                    .iter()
                    .find(|a| a.name == *app)
                    .ok_or_else(no_app)?
                    .start_timeout;
                let set = ctx.apps.upstreams(app).ok_or_else(no_app)?;
                let proxy = Proxy::app(cfg, set, Arc::clone(&ctx.upgrades), wait, app)
                    .map_err(|e| err(what.clone())(e.to_string()))?;
                proxy_handler(proxy, cfg, &mut stages).map_err(err(what.clone()))?
            }
        };
        routes.push((Matcher::new(&route.matcher), Chain::new(stages, handler)));
    }
    let routes = Arc::new(Routes {
        routes,
        fallback: site_static,
    });
    let dispatch: Handler = Arc::new(move |req| routes.dispatch(req));
    Ok(Site {
        endpoints: site.endpoints.clone(),
        chain: Chain::new(site_stages, dispatch),
    })
}

/// The handler of a proxy; its `request_headers` / `response_headers` become a `headers`
/// stage right in front of it, so they reuse that stage's rules and placeholders.
fn proxy_handler(
    proxy: Arc<Proxy>,
    cfg: &crate::config::ProxyConfig,
    stages: &mut Vec<Arc<dyn Middleware>>,
) -> Result<Handler, String> {
    let rules = HeadersStage {
        request: cfg.request_headers.clone(),
        response: cfg.response_headers.clone(),
    };
    if rules != HeadersStage::default() {
        stages.push(Arc::new(crate::middleware::headers::Headers::new(&rules)?));
    }
    Ok(Arc::new(move |req| Box::pin(Arc::clone(&proxy).serve(req))))
}

/// Builds one stage; `root` is the site's static root (rewrite's `{REQUEST_FILENAME}`).
fn stage(cfg: &StageConfig, root: &std::path::Path) -> Result<Arc<dyn Middleware>, String> {
    Ok(match cfg {
        StageConfig::Rewrite(r) => Arc::new(crate::middleware::rewrite::Rewrite::new(r, root)?),
        StageConfig::Headers(h) => Arc::new(crate::middleware::headers::Headers::new(h)?),
        StageConfig::RateLimit(r) => Arc::new(crate::middleware::rate_limit::RateLimit::new(r)),
        StageConfig::RequestFilter(r) => {
            Arc::new(crate::middleware::request_filter::RequestFilter::new(r))
        }
        StageConfig::ForwardedHeaders(f) => Arc::new(
            crate::middleware::forwarded_headers::ForwardedHeaders::new(f),
        ),
        StageConfig::IpFilter(f) => Arc::new(crate::middleware::ip_filter::IpFilter::new(f)),
        StageConfig::Compress(c) => Arc::new(crate::middleware::compress::Compress::new(c)),
        StageConfig::ErrorPages(e) => {
            Arc::new(crate::middleware::error_pages::ErrorPages::new(e, root)?)
        }
        StageConfig::BasicAuth(b) => Arc::new(crate::middleware::basic_auth::BasicAuth::new(b)?),
        StageConfig::Cors(c) => Arc::new(crate::middleware::cors::Cors::new(c)?),
    })
}

/// The static-file handler for `cfg`.
pub fn static_handler(cfg: &StaticConfig, server_header: bool) -> Result<Handler, String> {
    let files = Arc::new(StaticFiles::new(cfg, server_header).map_err(|e| e.to_string())?);
    Ok(handler_fn(move |req: Request<Body>| {
        let files = Arc::clone(&files);
        // The body is not needed, and dropping it keeps the future `Send`.
        let req = req.map(|_| ());
        async move { files.serve(&req).await }
    }))
}

/// A request id: unique within the process, unpredictable enough for log correlation.
pub fn request_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()).rotate_left(32)
    });
    // SplitMix64 of seed + counter: distinct ids, no visible sequence.
    let mut z = seed.wrapping_add(
        COUNTER
            .fetch_add(1, Ordering::Relaxed)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15),
    );
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    format!("{:016x}", z ^ (z >> 31))
}
