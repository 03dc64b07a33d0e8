//! `error_pages`: error responses get the body of a file of the site (a branded 404 page,
//! a friendly 5xx page), keeping their status and their other headers.
//!
//! The stage sees the final response of everything after it, so it also replaces the
//! static handler's own `not_found_page`. List `compress` before `error_pages` so that the
//! replaced body is compressed on its way out.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{
    ACCEPT_RANGES, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    LAST_MODIFIED,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};

use crate::body::{self, Body};
use crate::config::{ErrorPagesStage, ErrorStatus};
use crate::pipeline::{HandlerFuture, Middleware, Next};

/// Pages are held in memory for the server's life: a bound keeps that memory small.
const MAX_PAGE_SIZE: u64 = 1024 * 1024;

/// A page read at startup.
struct Page {
    body: Bytes,
    content_type: HeaderValue,
}

/// The `error_pages` stage.
pub struct ErrorPages {
    pages: Arc<Vec<(ErrorStatus, Page)>>,
}

impl ErrorPages {
    /// Reads every page under `root` (the site root); a missing or oversized file fails
    /// the startup rather than the first error.
    pub fn new(cfg: &ErrorPagesStage, root: &Path) -> Result<ErrorPages, String> {
        let pages = cfg
            .pages
            .iter()
            .map(|(status, rel)| {
                let path = root.join(rel);
                let read = |e: std::io::Error| format!("cannot read {}: {e}", path.display());
                let size = std::fs::metadata(&path).map_err(read)?.len();
                if size > MAX_PAGE_SIZE {
                    return Err(format!(
                        "{} is larger than {MAX_PAGE_SIZE} bytes",
                        path.display()
                    ));
                }
                let body = Bytes::from(std::fs::read(&path).map_err(read)?);
                Ok((
                    *status,
                    Page {
                        body,
                        content_type: crate::handlers::static_files::content_type(rel),
                    },
                ))
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(ErrorPages {
            pages: Arc::new(pages),
        })
    }
}

/// The page for `status`: an exact code beats its class.
fn page_for(pages: &[(ErrorStatus, Page)], status: StatusCode) -> Option<&Page> {
    let class = status.as_u16() / 100;
    let find = |want: ErrorStatus| pages.iter().find(|(s, _)| *s == want).map(|(_, p)| p);
    find(ErrorStatus::Code(status)).or_else(|| find(ErrorStatus::Class(class)))
}

impl Middleware for ErrorPages {
    fn handle(&self, req: Request<Body>, next: Next) -> HandlerFuture {
        let head = match *req.method() {
            Method::GET => false,
            Method::HEAD => true,
            // Other methods' error bodies are for programs (APIs), not people.
            _ => return next.run(req),
        };
        let pages = Arc::clone(&self.pages);
        Box::pin(async move {
            let resp = next.run(req).await;
            match page_for(&pages, resp.status()) {
                Some(page) => replace(resp, page, head),
                None => resp,
            }
        })
    }
}

/// `resp` with `page` as its body; the headers that described the old body go.
fn replace(resp: Response<Body>, page: &Page, head: bool) -> Response<Body> {
    let (mut parts, _) = resp.into_parts();
    let h = &mut parts.headers;
    for name in [
        CONTENT_ENCODING,
        CONTENT_RANGE,
        ACCEPT_RANGES,
        ETAG,
        LAST_MODIFIED,
    ] {
        h.remove(name);
    }
    h.insert(CONTENT_TYPE, page.content_type.clone());
    h.insert(CONTENT_LENGTH, HeaderValue::from(page.body.len()));
    let body = if head {
        body::empty()
    } else {
        body::full(page.body.clone())
    };
    Response::from_parts(parts, body)
}
