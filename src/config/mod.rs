//! Settings: TOML file, environment overrides and command-line overrides, validated once.
//!
//! Loading goes: find the settings file (DESIGN §1.1) → parse it into a tree whose nodes
//! remember where they were written → lay the environment and then the command line over it
//! → read the typed [`Config`] from the tree, collecting every problem with its origin and key
//! path. Precedence is therefore built-in defaults < file < environment < command line.

mod apps;
mod defaults;
mod endpoints;
mod env;
mod error;
mod model;
mod print;
mod print_proxy;
mod print_sites;
mod proxy;
mod proxy_model;
mod proxy_upstreams;
mod reader;
mod routes;
mod sections;
mod site_model;
mod sites;
mod stage_basic_auth;
mod stage_compress;
mod stage_cors;
mod stage_error_pages;
mod stage_forwarded_headers;
mod stage_ip_filter;
mod stage_rate_limit;
mod stage_request_filter;
mod stage_rewrite;
mod stages;
mod tls;
mod tree;
mod units;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, Diagnostic, Diagnostics, Origin};
pub use model::*;
pub use proxy_model::*;
pub use site_model::*;
pub use stage_rewrite::{
    parse_template, rewrite_regex, ConditionTest, RewriteAction, RewriteCondition, RewriteRule,
    RewriteStage, TemplatePart,
};

use reader::Section;
use tree::{Entry, Node, Value};

/// Inputs to loading, gathered by the CLI (or an embedder).
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// APP_DIR from the command line, default "."; the static root unless `static.root` is set.
    pub app_dir: PathBuf,
    /// `-c/--config`: the settings file to read, instead of discovering one.
    pub config_file: Option<PathBuf>,
    /// The process environment (tests inject their own); `HARRIER__...` variables override
    /// settings and `HARRIER_CONFIG` names the settings file.
    pub env: Vec<(String, String)>,
    /// `-l/--listen` URLs; when any are given they replace the configured endpoints.
    pub listen: Vec<String>,
    /// `--port`: the port of the single http:// or https:// endpoint.
    pub port: Option<u16>,
}

impl Default for LoadOptions {
    /// Serve "." with no overrides and an empty environment (not the process's: embedders
    /// and tests decide what to pass).
    fn default() -> Self {
        LoadOptions {
            app_dir: PathBuf::from("."),
            config_file: None,
            env: Vec::new(),
            listen: Vec::new(),
            port: None,
        }
    }
}

/// The variable that names the settings file (single underscore: not an override).
const CONFIG_VAR: &str = "HARRIER_CONFIG";

/// Finds, reads and validates the settings: `-c`, else `$HARRIER_CONFIG`, else
/// `APP_DIR/harrier.toml` if it exists, else the built-in defaults.
pub fn load(opts: &LoadOptions) -> Result<Config, ConfigError> {
    match discover(opts) {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|error| ConfigError::Read {
                path: path.clone(),
                error,
            })?;
            load_str(&text, &path, opts)
        }
        None => {
            let root = Node::empty_table(Origin::Cli("argument APP_DIR".to_owned()));
            let base_dir = defaults::absolute(&opts.app_dir);
            read(root, None, &base_dir, opts)
        }
    }
}

/// Same as [`load`], but the settings text is given (for tests and embedding); `name` is
/// used in messages, and its directory resolves relative paths.
pub fn load_str(text: &str, name: &Path, opts: &LoadOptions) -> Result<Config, ConfigError> {
    let root = tree::parse(text, &name.display().to_string())
        .map_err(|problem| ConfigError::Invalid(Diagnostics::one(problem)))?;
    let base_dir = defaults::absolute(name.parent().unwrap_or(Path::new(".")));
    read(root, Some(name), &base_dir, opts)
}

fn discover(opts: &LoadOptions) -> Option<PathBuf> {
    let from_env = || {
        opts.env
            .iter()
            .find(|(name, value)| name.eq_ignore_ascii_case(CONFIG_VAR) && !value.is_empty())
            .map(|(_, value)| PathBuf::from(value))
    };
    let in_app_dir = || {
        let path = opts.app_dir.join("harrier.toml");
        path.is_file().then_some(path)
    };
    opts.config_file
        .clone()
        .or_else(from_env)
        .or_else(in_app_dir)
}

/// Lays the environment and command line over `root` and reads the typed model from it.
fn read(
    mut root: Node,
    source: Option<&Path>,
    base_dir: &Path,
    opts: &LoadOptions,
) -> Result<Config, ConfigError> {
    let mut problems = env::apply(&mut root, &opts.env);
    if !opts.listen.is_empty() {
        replace_endpoints(&mut root, &opts.listen);
    }
    let app_dir = defaults::absolute(&opts.app_dir);
    let mut top = Section::new(String::new(), root);
    let server = sections::server(&mut top);
    let limits = sections::limits(&mut top);
    let endpoints = endpoints::endpoints(&mut top, base_dir, opts.port);
    let static_files = sections::static_files(&mut top, base_dir, &app_dir);
    let log = sections::log(&mut top);
    let (apps, app_names) = apps::apps(&mut top, base_dir);
    let context = sites::Context {
        base_dir,
        static_files: &static_files,
        endpoints: &endpoints,
        listen: !opts.listen.is_empty(),
        apps: &app_names,
    };
    let sites = sites::sites(&mut top, &context);
    let config = Config {
        server,
        limits,
        endpoints,
        static_files,
        log,
        sites,
        apps,
        source: source.map(Path::to_path_buf),
    };
    problems.extend(top.finish());
    match Diagnostics::from_list(problems) {
        Some(list) => Err(ConfigError::Invalid(list)),
        None => Ok(config),
    }
}

/// `--listen` URLs become the endpoint list, each with the default protocols.
fn replace_endpoints(root: &mut Node, listen: &[String]) {
    let Value::Table(entries) = &mut root.value else {
        return;
    };
    let origin_of = |url: &str| Origin::Cli(format!("option --listen {url}"));
    let tables = listen
        .iter()
        .map(|url| {
            let origin = origin_of(url);
            let url = Node {
                value: Value::String(url.clone()),
                origin: origin.clone(),
            };
            Node {
                value: Value::Table(vec![Entry {
                    key: "url".to_owned(),
                    key_origin: origin.clone(),
                    node: url,
                }]),
                origin,
            }
        })
        .collect();
    let origin = origin_of(&listen.join(" "));
    entries.retain(|entry| entry.key != "endpoints");
    entries.push(Entry {
        key: "endpoints".to_owned(),
        key_origin: origin.clone(),
        node: Node {
            value: Value::Array(tables),
            origin,
        },
    });
}
