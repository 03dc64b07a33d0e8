//! Golden tests of the settings loader: settings file → effective config, bad settings →
//! exact error text.
//!
//! `tests/golden/config/ok/NAME.toml` must load, and its `to_toml()` must equal
//! `NAME.expected.toml` and load back to an equal `Config`. `tests/golden/config/bad/NAME.toml`
//! must fail with exactly `NAME.expected.txt`. Lines at the top of a case starting with `#!`
//! set the other inputs:
//!
//! ```text
//! #! env NAME=VALUE      an environment variable
//! #! listen URL          a --listen URL
//! #! port N              --port
//! #! usage               (bad cases) the error must be a usage error
//! #! file PATH           load PATH (relative to the crate) as if it were this case, so
//!                        that its relative paths resolve in this directory
//! ```
//!
//! Absolute paths under the crate are shown as `<crate>`. Run with `UPDATE_GOLDEN=1` to
//! rewrite the expected files, then review the diff before committing.

use std::fs;
use std::path::{Path, PathBuf};

use harrier::config::{self, Config, HandlerConfig, LoadOptions};

const GOLDEN: &str = "tests/golden/config";

/// A case's inputs besides the settings text.
struct Case {
    path: PathBuf,
    text: String,
    opts: LoadOptions,
    usage: bool,
}

fn case(path: &Path) -> Case {
    let stub = fs::read_to_string(path).unwrap();
    let mut text = stub.clone();
    let mut opts = LoadOptions {
        app_dir: path.parent().unwrap().to_path_buf(),
        ..LoadOptions::default()
    };
    let mut usage = false;
    for line in stub.lines() {
        let Some(directive) = line.strip_prefix("#! ") else {
            continue;
        };
        let (word, arg) = directive.split_once(' ').unwrap_or((directive, ""));
        match word {
            "env" => {
                let (name, value) = arg.split_once('=').unwrap();
                opts.env.push((name.to_owned(), value.to_owned()));
            }
            "listen" => opts.listen.push(arg.to_owned()),
            "port" => opts.port = Some(arg.parse().unwrap()),
            "usage" => usage = true,
            "file" => text = fs::read_to_string(arg).unwrap(),
            other => panic!("{}: unknown directive {other}", path.display()),
        }
    }
    Case {
        path: path.to_path_buf(),
        text,
        opts,
        usage,
    }
}

/// The `.toml` cases of a golden directory, sorted.
fn cases(dir: &str) -> Vec<Case> {
    let mut paths: Vec<PathBuf> = fs::read_dir(Path::new(GOLDEN).join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.ends_with(".toml") && !name.ends_with(".expected.toml")
        })
        .collect();
    paths.sort();
    assert!(!paths.is_empty(), "no cases in {dir}");
    paths.iter().map(|p| case(p)).collect()
}

fn normalize(text: &str) -> String {
    text.replace(env!("CARGO_MANIFEST_DIR"), "<crate>")
}

/// Compares `actual` with the expected file, or rewrites it under `UPDATE_GOLDEN=1`; returns
/// a description of the difference.
fn compare(expected_path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(expected_path, actual).unwrap();
        return None;
    }
    let expected = fs::read_to_string(expected_path).unwrap_or_default();
    (expected != actual).then(|| {
        format!(
            "{}:\n--- expected\n{expected}\n--- actual\n{actual}",
            expected_path.display()
        )
    })
}

fn expected_path(case: &Case, extension: &str) -> PathBuf {
    let stem = case
        .path
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    case.path.with_file_name(format!("{stem}.{extension}"))
}

fn report(failures: Vec<String>) {
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

/// Reading the printed config back gives the same config (the settings file aside).
fn round_trip(case: &Case, config: &Config) -> Option<String> {
    let printed = config.to_toml();
    let opts = LoadOptions {
        app_dir: case.opts.app_dir.clone(),
        ..LoadOptions::default()
    };
    let name = expected_path(case, "expected.toml");
    match config::load_str(&printed, &name, &opts) {
        Ok(mut again) => {
            again.source.clone_from(&config.source);
            (&again != config).then(|| format!("{}: round trip differs", case.path.display()))
        }
        Err(e) => Some(format!(
            "{}: printed config does not load: {e}",
            case.path.display()
        )),
    }
}

#[test]
fn ok_cases_print_their_effective_config() {
    let mut failures = Vec::new();
    for case in cases("ok") {
        match config::load_str(&case.text, &case.path, &case.opts) {
            Ok(config) => {
                let printed = normalize(&config.to_toml());
                failures.extend(compare(&expected_path(&case, "expected.toml"), &printed));
                failures.extend(round_trip(&case, &config));
            }
            Err(e) => failures.push(format!("{}: unexpected error:\n{e}", case.path.display())),
        }
    }
    report(failures);
}

#[test]
fn bad_cases_fail_with_their_message() {
    let mut failures = Vec::new();
    for case in cases("bad") {
        match config::load_str(&case.text, &case.path, &case.opts) {
            Ok(_) => failures.push(format!("{}: loaded without error", case.path.display())),
            Err(e) => {
                let text = normalize(&format!("{e}\n"));
                failures.extend(compare(&expected_path(&case, "expected.txt"), &text));
                if e.is_usage() != case.usage {
                    let want = if case.usage { "a" } else { "not a" };
                    failures.push(format!(
                        "{}: should be {want} usage error",
                        case.path.display()
                    ));
                }
            }
        }
    }
    report(failures);
}

#[test]
fn documented_settings_file_loads_to_the_defaults() {
    let opts = LoadOptions {
        config_file: Some(PathBuf::from("config/harrier.toml")),
        ..LoadOptions::default()
    };
    let mut loaded = config::load(&opts).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        loaded.source.take(),
        Some(PathBuf::from("config/harrier.toml"))
    );
    assert_eq!(loaded, Config::defaults(Path::new(".")));
}

/// A commented example of `config/harrier.toml`, uncommented: from the line `first` after
/// the text `after` to the end of that comment block.
fn documented_example(after: &str, first: &str) -> String {
    let text = fs::read_to_string("config/harrier.toml").unwrap();
    let start = text.find(after).expect(after);
    text[start..]
        .lines()
        .skip_while(|line| *line != first)
        .take_while(|line| line.starts_with('#'))
        .map(|line| format!("{}\n", line.trim_start_matches('#').trim_start()))
        .collect()
}

/// Loads `example` as the settings file `file`, which must work.
fn load_example(example: &str, file: &Path) -> Config {
    config::load_str(example, file, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{e}\n{example}"))
}

/// The commented https:// example of `config/harrier.toml` (from the first commented
/// `[[endpoints]]` after "For example" to the end of the comment block) loads once
/// uncommented, so the documentation cannot drift from the reader.
#[test]
fn documented_https_example_loads() {
    let example = documented_example("# For example", "# [[endpoints]]");
    let loaded = load_example(&example, Path::new("config/harrier.toml"));
    let tls = loaded.endpoints[1].tls.as_ref().expect("an https endpoint");
    assert!(loaded.endpoints[0].https_redirect && loaded.endpoints[1].protocols.http3);
    assert_eq!(tls.certificates.len(), 2);
}

/// The commented `[[sites]]` example of `config/harrier.toml` (from "# For example, a site"
/// to the end of the comment block) loads once uncommented, next to the directories it
/// names.
#[test]
fn documented_sites_example_loads() {
    let sites = documented_example("# For example, a site", "# [[sites]]");
    let dir = tempfile::tempdir().unwrap();
    for sub in ["wwwroot", "downloads"] {
        fs::create_dir(dir.path().join(sub)).unwrap();
    }
    let endpoint = "[[endpoints]]\nname = \"web\"\nurl = \"http://127.0.0.1:0\"\n";
    let loaded = load_example(
        &format!("{endpoint}{sites}"),
        &dir.path().join("harrier.toml"),
    );
    let [main, other] = &loaded.sites[..] else {
        panic!("two sites: {:?}", loaded.sites)
    };
    assert_eq!(main.routes.len(), 3);
    assert_eq!(main.static_files.root, dir.path().join("wwwroot"));
    assert_eq!(other.routes.len(), 1);
}

/// The commented proxy and `[[apps]]` example of `config/harrier.toml` (from "# For
/// example, a site whose /api/" to the end of the comment block) loads once uncommented.
#[test]
fn documented_proxy_example_loads() {
    let example = documented_example("# For example, a site whose /api/", "# [[sites]]");
    let loaded = load_example(&example, Path::new("config/harrier.toml"));
    let routes = &loaded.sites[0].routes;
    assert!(matches!(&routes[0].handler, HandlerConfig::Proxy(p) if p.upstreams.len() == 2));
    assert!(matches!(&routes[1].handler, HandlerConfig::App { app, .. } if app == "python-app"));
    assert_eq!(loaded.apps.len(), 1);
    assert_eq!(loaded.apps[0].instances, 2);
}

#[test]
fn defaults_print_and_load_back() {
    let defaults = Config::defaults(Path::new("."));
    let mut again = load_example(&defaults.to_toml(), Path::new("x.toml"));
    assert_eq!(again.source.take(), Some("x.toml".into()));
    assert_eq!(again, defaults);
}

#[test]
fn discovery_order() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    fs::create_dir(&app).unwrap();
    let opts = |config_file: Option<&str>, env: &[(&str, &str)]| LoadOptions {
        app_dir: app.clone(),
        config_file: config_file.map(|f| dir.path().join(f)),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..LoadOptions::default()
    };
    let worker_threads = |opts: &LoadOptions| config::load(opts).unwrap().server.worker_threads;

    // Nothing: built-in defaults.
    let defaults = config::load(&opts(None, &[])).unwrap();
    assert_eq!(defaults, Config::defaults(&app));

    // APP_DIR/harrier.toml is found.
    fs::write(app.join("harrier.toml"), "server.worker_threads = 1").unwrap();
    assert_eq!(worker_threads(&opts(None, &[])), 1);

    // HARRIER_CONFIG wins over APP_DIR/harrier.toml.
    let env_file = dir.path().join("env.toml");
    fs::write(&env_file, "server.worker_threads = 2").unwrap();
    let env_name = env_file.to_str().unwrap();
    assert_eq!(
        worker_threads(&opts(None, &[("HARRIER_CONFIG", env_name)])),
        2
    );

    // -c wins over both.
    fs::write(dir.path().join("c.toml"), "server.worker_threads = 3").unwrap();
    assert_eq!(
        worker_threads(&opts(Some("c.toml"), &[("HARRIER_CONFIG", env_name)])),
        3
    );

    // Environment overrides the file; precedence does not depend on the variable's case.
    let env = [("harrier__server__worker_threads", "4")];
    assert_eq!(worker_threads(&opts(Some("c.toml"), &env)), 4);
}

#[test]
fn a_missing_explicit_file_is_an_error_naming_it() {
    let opts = LoadOptions {
        config_file: Some(PathBuf::from("tests/golden/config/no-such-file.toml")),
        ..LoadOptions::default()
    };
    let err = config::load(&opts).unwrap_err();
    assert!(!err.is_usage());
    let text = err.to_string();
    assert!(
        text.starts_with("tests/golden/config/no-such-file.toml: cannot read settings file: "),
        "{text}"
    );
}
