//! Tests of the whole handler: real files in a temporary directory, real `http::Request`s.

mod basics;
mod cache;
mod conditional;
mod directories;
mod encoding;
mod range;
mod security;

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;

use super::StaticFiles;
use crate::config::{FileCacheConfig, StaticConfig};

/// A served temporary directory.
pub struct Site {
    /// Kept so the directory lives as long as the site.
    pub _dir: tempfile::TempDir,
    pub root: std::path::PathBuf,
    pub files: StaticFiles,
}

/// A collected response.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// A header as text, or "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map_or("", |v| v.to_str().unwrap_or("<binary>"))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub fn config(root: &Path) -> StaticConfig {
    StaticConfig {
        root: root.to_path_buf(),
        index_files: vec!["index.html".to_owned()],
        fallback: None,
        not_found_page: None,
        directory_listing: false,
        serve_hidden_files: false,
        follow_symlinks: false,
        precompressed: true,
        cache_control: None,
        cache: FileCacheConfig {
            max_file_size: 1024,
            max_total_size: 1 << 20,
            revalidate_after: Duration::from_secs(3600),
        },
    }
}

/// Writes `files` (paths ending in `/` are directories) and serves them with `tweak`ed settings.
pub fn site(files: &[(&str, &[u8])], tweak: impl FnOnce(&mut StaticConfig)) -> Site {
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in files {
        let path = dir.path().join(name);
        if name.ends_with('/') {
            std::fs::create_dir_all(&path).unwrap();
        } else {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, content).unwrap();
        }
    }
    let mut cfg = config(dir.path());
    tweak(&mut cfg);
    let files = StaticFiles::new(&cfg, true).unwrap();
    let root = dir.path().to_path_buf();
    Site {
        _dir: dir,
        root,
        files,
    }
}

impl Site {
    pub async fn get(&self, uri: &str) -> Reply {
        self.send("GET", uri, &[]).await
    }

    pub async fn get_with(&self, uri: &str, headers: &[(&str, &str)]) -> Reply {
        self.send("GET", uri, headers).await
    }

    pub async fn send(&self, method: &str, uri: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let req = req.body(crate::body::empty()).unwrap();
        let response = self.files.serve(&req).await;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.unwrap().to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub fn path(&self, name: &str) -> std::path::PathBuf {
        self.root.join(name)
    }
}

/// The future must be `Send` for hyper's multi-threaded executor, even for a request whose
/// body is not `Sync`.
#[allow(dead_code)]
fn serve_future_is_send(files: &StaticFiles, req: &Request<crate::body::Body>) {
    fn assert_send<T: Send>(_: T) {}
    assert_send(files.serve(req));
}
