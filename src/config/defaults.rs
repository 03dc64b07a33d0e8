//! Built-in defaults: DESIGN §1.2, Kestrel's values where Kestrel has one.
//!
//! These are the only place defaults are written in code; the reader starts from them and
//! `config/harrier.toml` documents them (a test checks the two agree).

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::model::*;
use super::site_model::UnknownHost;

impl Config {
    /// The configuration used when no settings file exists: serve `app_dir` as static files
    /// on `http://127.0.0.1:8080`.
    pub fn defaults(app_dir: &Path) -> Config {
        Config {
            server: ServerConfig::default(),
            limits: Limits::default(),
            endpoints: vec![EndpointConfig::default()],
            static_files: StaticConfig::serving(absolute(app_dir)),
            log: LogConfig::default(),
            sites: Vec::new(),
            apps: Vec::new(),
            source: None,
        }
    }
}

/// `path` made absolute against the current directory (without resolving symbolic links,
/// so the printed config shows the paths the user wrote); an empty path means ".".
pub(crate) fn absolute(path: &Path) -> PathBuf {
    let path = if path.as_os_str().is_empty() {
        Path::new(".")
    } else {
        path
    };
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            add_server_header: true,
            shutdown_timeout: Duration::from_secs(30),
            shutdown_delay: Duration::ZERO,
            worker_threads: 0,
            unknown_host: UnknownHost::Misdirected,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_body_size: Some(30_000_000),
            keep_alive_timeout: Duration::from_secs(130),
            request_headers_timeout: Duration::from_secs(30),
            max_request_line_size: 8 * 1024,
            max_request_header_count: 100,
            max_request_headers_total_size: 32 * 1024,
            max_concurrent_connections: None,
            max_concurrent_upgraded_connections: None,
            min_request_body_data_rate: Some(DataRate::default()),
            min_response_data_rate: Some(DataRate::default()),
            http2: Http2Limits::default(),
            http3: Http3Limits::default(),
        }
    }
}

impl Default for DataRate {
    fn default() -> Self {
        DataRate {
            bytes_per_second: 240,
            grace_period: Duration::from_secs(5),
        }
    }
}

impl Default for Http2Limits {
    fn default() -> Self {
        Http2Limits {
            max_streams_per_connection: 100,
            header_table_size: 4096,
            max_frame_size: 16_384,
            max_request_header_field_size: 16 * 1024,
            initial_connection_window_size: 1024 * 1024,
            initial_stream_window_size: 768 * 1024,
            keep_alive_ping_delay: None,
            keep_alive_ping_timeout: Duration::from_secs(20),
        }
    }
}

impl Default for Http3Limits {
    fn default() -> Self {
        Http3Limits {
            max_request_header_field_size: 16 * 1024,
            max_streams_per_connection: 100,
        }
    }
}

impl Default for EndpointConfig {
    /// `http://127.0.0.1:8080`: loopback only, so a server started by accident is not
    /// reachable from the network.
    fn default() -> Self {
        EndpointConfig {
            name: None,
            url: ListenUrl::Http(SocketAddr::from((Ipv4Addr::LOCALHOST, 8080))),
            protocols: Protocols::default(),
            proxy_protocol: false,
            tls: None,
            https_redirect: false,
        }
    }
}

impl Default for TlsConfig {
    /// No certificate files (a development certificate on loopback), both TLS versions, no
    /// client certificates, the default certificate for unknown server names, a 10s
    /// handshake (Kestrel's), no HSTS.
    fn default() -> Self {
        TlsConfig {
            certificates: Vec::new(),
            certificates_dir: None,
            versions: TlsVersions::default(),
            client_certificate: ClientCertificate::None,
            client_ca: None,
            unknown_sni: UnknownSni::Default,
            require_sni_host_match: false,
            handshake_timeout: Duration::from_secs(10),
            hsts: None,
        }
    }
}

impl Default for TlsVersions {
    /// TLS 1.2 and 1.3: every version still considered safe.
    fn default() -> Self {
        TlsVersions {
            tls12: true,
            tls13: true,
        }
    }
}

impl Default for Protocols {
    /// HTTP/1.1 and HTTP/2 (h2c on http://), as Kestrel.
    fn default() -> Self {
        Protocols {
            http1: true,
            http2: true,
            http3: false,
        }
    }
}

impl StaticConfig {
    /// The static-file defaults, serving `root`.
    pub fn serving(root: PathBuf) -> StaticConfig {
        StaticConfig {
            root,
            index_files: vec!["index.html".to_owned()],
            fallback: None,
            not_found_page: Some("404.html".to_owned()),
            directory_listing: false,
            serve_hidden_files: false,
            follow_symlinks: false,
            precompressed: true,
            cache_control: None,
            cache: FileCacheConfig::default(),
        }
    }
}

impl Default for FileCacheConfig {
    fn default() -> Self {
        FileCacheConfig {
            max_file_size: 256 * 1024,
            max_total_size: 64 * 1024 * 1024,
            revalidate_after: Duration::from_secs(1),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
            access_log: AccessLogFormat::Combined,
        }
    }
}
