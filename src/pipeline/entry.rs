//! The hyper service of every connection: protocol-independent checks, then the handler.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue, CONNECTION, CONTENT_LENGTH, HOST, SERVER};
use http::{Request, Response, StatusCode, Version};
use http_body_util::BodyExt;

use super::{endpoint_rules, error_response, ConnInfo, ResponseBody, Router};
use crate::access_log::Record;
use crate::config::{AccessLogFormat, Config, DataRate};
use crate::limits::{ConnShared, LimitedBody};

/// Everything a connection needs to answer requests; built once from the config.
pub struct App {
    router: Router,
    add_server_header: bool,
    max_body: Option<u64>,
    body_rate: Option<DataRate>,
    max_header_count: usize,
    max_headers_total: usize,
    access_log: AccessLogFormat,
}

impl App {
    /// The request-handling part of `config`, answering through `router`.
    pub fn new(config: &Config, router: Router) -> Self {
        App {
            router,
            add_server_header: config.server.add_server_header,
            max_body: config.limits.max_request_body_size,
            body_rate: config.limits.min_request_body_data_rate,
            max_header_count: config.limits.max_request_header_count,
            max_headers_total: config.limits.max_request_headers_total_size,
            access_log: config.log.access_log,
        }
    }

    /// Answers a request that passed the entry checks, or the status of the failed check.
    fn check<B>(&self, req: &Request<B>) -> Result<(), StatusCode> {
        let headers = req.headers();
        if headers.len() > self.max_header_count {
            return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
        }
        if req.version() >= Version::HTTP_2 {
            // HTTP/1.1 heads were measured on the wire; HTTP/2 and 3 fields are measured here.
            let total: usize = headers
                .iter()
                .map(|(n, v)| n.as_str().len() + v.len() + 4)
                .sum();
            if total > self.max_headers_total {
                return Err(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
            }
        } else {
            let mut hosts = headers.get_all(HOST).iter();
            let first = hosts.next();
            if hosts.next().is_some() || (first.is_none() && req.version() == Version::HTTP_11) {
                return Err(StatusCode::BAD_REQUEST);
            }
        }
        if let (Some(max), Some(len)) = (self.max_body, headers.get(CONTENT_LENGTH)) {
            let len = len.to_str().ok().and_then(|s| s.parse::<u64>().ok());
            if len.is_none_or(|len| len > max) {
                return Err(StatusCode::PAYLOAD_TOO_LARGE);
            }
        }
        Ok(())
    }
}

/// One connection's service: shares the connection state and the app.
#[derive(Clone)]
pub struct Entry {
    app: Arc<App>,
    shared: Arc<ConnShared>,
    conn: Arc<ConnInfo>,
}

impl Entry {
    /// The service for one connection.
    pub fn new(app: Arc<App>, shared: Arc<ConnShared>, conn: Arc<ConnInfo>) -> Self {
        Entry { app, shared, conn }
    }
}

type EntryFuture = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Infallible>> + Send>>;

/// Generic over the request body so that HTTP/1.1 and HTTP/2 (hyper's `Incoming`) and HTTP/3
/// requests go through the same checks and the same handler.
impl<B> hyper::service::Service<Request<B>> for Entry
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<crate::body::BoxError>,
{
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = EntryFuture;

    fn call(&self, req: Request<B>) -> Self::Future {
        let guard = self.shared.start_request();
        let app = Arc::clone(&self.app);
        let mut record = Record::start(
            app.access_log,
            self.conn.remote,
            req.method(),
            req.uri(),
            req.version(),
            req.headers(),
        );
        let checked = app.check(&req);
        let is_h1 = req.version() < Version::HTTP_2;
        let conn = Arc::clone(&self.conn);
        let early = checked
            .is_ok()
            .then(|| endpoint_rules::answer(&conn, &req))
            .flatten();
        let hsts = endpoint_rules::wants_hsts(&conn, &req);
        Box::pin(async move {
            let mut resp = match (checked, early) {
                (Ok(()), Some(answer)) => answer,
                (Ok(()), None) => {
                    let req = req.map(|incoming| {
                        LimitedBody::new(incoming, app.max_body, app.body_rate).boxed_unsync()
                    });
                    // Routing runs stages eagerly (building their futures): it must
                    // happen inside the scope too, so the router is called from within.
                    let routed = async { app.router.route(req).await };
                    ConnInfo::scope(Arc::clone(&conn), routed).await
                }
                (Err(status), _) => {
                    let mut resp = error_response(status);
                    if is_h1 {
                        // The body (if any) is not read: the connection cannot be reused.
                        resp.headers_mut()
                            .insert(CONNECTION, HeaderValue::from_static("close"));
                    }
                    resp
                }
            };
            if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
                guard.conn().mark_upgraded();
            }
            endpoint_rules::decorate(&conn, hsts, resp.headers_mut());
            if app.add_server_header {
                // Static file answers carry it already (see `StaticFiles::new`); replacing
                // it would cost as much as inserting it.
                match resp.headers_mut().entry(SERVER) {
                    header::Entry::Occupied(e)
                        if e.get() == "harrier" && e.iter().nth(1).is_none() => {}
                    header::Entry::Occupied(mut e) => {
                        e.insert(super::server_header());
                    }
                    header::Entry::Vacant(e) => {
                        e.insert(super::server_header());
                    }
                }
            }
            if let Some(record) = record.as_mut() {
                record.set_status(resp.status());
                if let Some(client) = conn.tls.as_ref().and_then(|t| t.client.as_ref()) {
                    record.set_client_cert(client.subject.clone());
                }
                if let Some(client) = resp.extensions().get::<super::ClientAddr>() {
                    record.set_client(client.ip);
                }
                // Only the log reads the user from the response: taken, not copied.
                let user = resp
                    .extensions_mut()
                    .remove::<crate::middleware::basic_auth::AuthUser>();
                if let Some(user) = user {
                    record.set_user(user.0);
                }
            }
            let guard = match resp.extensions_mut().remove::<super::Tunnel>() {
                Some(super::Tunnel(done)) => {
                    tokio::spawn(async move {
                        done.cancelled().await;
                        drop(guard);
                    });
                    None
                }
                None => Some(guard),
            };
            Ok(resp.map(|body| ResponseBody::new(body, guard, record)))
        })
    }
}
