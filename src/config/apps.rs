//! `[[apps]]`: backend processes harrier starts, watches, restarts and recycles, which
//! `app` handlers forward requests to.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::error::Origin;
use super::proxy_model::*;
use super::reader::{at_least, in_range, narrow, timeout, Field, Section};
use super::sections::check_dir;
use super::stages::key_problem;
use super::tree::Value;
use super::units::{format_duration, format_size};

/// How `command` is described in messages.
const COMMAND: &str = "a list like [\"python\", \"app.py\"], or a program alone";
/// For a `command` without a program, as an empty list or an empty string.
const NO_PROGRAM: &str = "must name the program, e.g. command = [\"python\", \"app.py\"]";
/// `start` values.
const START: [&str; 2] = ["startup", "first_request"];
/// `listen` values.
const LISTEN: [&str; 2] = ["tcp", "unix"];
/// How `rapid_fail` is described in messages.
const RAPID_FAIL: &str = "a table like { crashes = 5, window = \"5m\" }";
/// How `recycle` is described in messages.
const RECYCLE: &str = "a table like { requests = 10000, memory = \"512MiB\", after = \"24h\", \
     at = [\"03:00\"] }";
/// How `env` is described in messages.
const ENV: &str = "a table of environment variables, like { PYTHONUNBUFFERED = \"1\" }";
/// How an item of `recycle.at` is described in messages.
const TIME_OF_DAY: &str = "a time of day in UTC, \"HH:MM\" from \"00:00\" to \"23:59\"";
/// The smallest `recycle.memory`: below it, every process would be recycled at once.
const MIN_MEMORY: u64 = 1 << 20;
/// The variables harrier sets to tell an instance where to listen.
const LISTEN_VARIABLES: [&str; 5] = [
    "PORT",
    "HARRIER_PORT",
    "HARRIER_SOCKET",
    "ASPNETCORE_PORT",
    "ASPNETCORE_URLS",
];

/// An app as read, with where its name was written, for the check across apps.
struct Read {
    path: String,
    name: Option<String>,
    name_at: Option<Field>,
    app: Option<AppConfig>,
}

/// Reads every `[[apps]]` table (relative paths against `base_dir`) and checks that names
/// are unique. Returns the apps and the names read, which routes may refer to (also those
/// of apps with other problems, so that a route is not blamed for them).
pub(crate) fn apps(root: &mut Section, base_dir: &Path) -> (Vec<AppConfig>, Vec<String>) {
    let read = root.tables("apps", "[[apps]]", |t| app(t, base_dir));
    let mut names: Vec<String> = Vec::new();
    for (i, later) in read.iter().enumerate() {
        let (Some(name), Some(at)) = (&later.name, &later.name_at) else {
            continue;
        };
        match read[..i].iter().find(|r| r.name.as_ref() == Some(name)) {
            Some(first) => root.report(at.problem(format!(
                "the name {name:?} is already used by {}",
                first.path
            ))),
            None => names.push(name.clone()),
        }
    }
    (read.into_iter().filter_map(|r| r.app).collect(), names)
}

fn app(t: &mut Section, base_dir: &Path) -> Read {
    let d = AppConfig::new(String::new(), Vec::new(), base_dir.to_path_buf());
    let name_at = t.require(
        "name",
        "every app needs a name, which its routes use: name = \"api\"",
    );
    let name = name_at
        .as_ref()
        .and_then(|f| t.check(f, f.string().and_then(app_name)));
    let command = t
        .require(
            "command",
            "every app needs a command, e.g. command = [\"python\", \"app.py\"]",
        )
        .and_then(|f| command(t, &f, base_dir));
    let dir = match t.take("dir") {
        None => Some(d.dir.clone()),
        Some(f) => {
            let dir = f
                .string()
                .and_then(|s| check_dir(&base_dir.join(s), "an app's dir"));
            t.check(&f, dir)
        }
    };
    let env = env(t);
    let instances = t.read("instances", d.instances, |f| {
        narrow(in_range(f.count()?, 1, 64)?, u32::MAX)
    });
    let start = t.read("start", d.start, |f| {
        Ok(match f.choice(&START)? {
            "first_request" => AppStart::FirstRequest,
            _ => AppStart::Startup,
        })
    });
    let start_timeout = t.read("start_timeout", d.start_timeout, timeout);
    let listen = t.read("listen", d.listen, listen);
    let ready = t.read("ready", d.ready.clone(), ready);
    let (restart_delay, restart_delay_max) = restart_delays(t, &d);
    let rapid_fail = rapid_fail(t, d.rapid_fail);
    let recycle = recycle(t);
    let stop_timeout = t.read("stop_timeout", d.stop_timeout, timeout);
    let app = match (&name, command, dir) {
        (Some(name), Some(command), Some(dir)) => Some(AppConfig {
            name: name.clone(),
            command,
            dir,
            env,
            instances,
            start,
            start_timeout,
            listen,
            ready,
            restart_delay,
            restart_delay_max,
            rapid_fail,
            recycle,
            stop_timeout,
        }),
        _ => None,
    };
    Read {
        path: t.path().to_owned(),
        name,
        name_at,
        app,
    }
}

/// An app's name: letters, digits, `-` and `_`.
fn app_name(name: String) -> Result<String, String> {
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(name)
    } else {
        Err(format!(
            "an app's name is letters, digits, \"-\" and \"_\", like \"api\", found {name:?}"
        ))
    }
}

/// `command`: a list (the program, then its arguments) or one string (the program alone);
/// `None` when it is wrong (the problems are recorded).
fn command(t: &mut Section, f: &Field, base_dir: &Path) -> Option<Vec<String>> {
    match &f.node.value {
        // From the environment, a list is a comma-separated string.
        Value::String(program) if !matches!(f.node.origin, Origin::Env(_)) => {
            let program = program_alone(program, base_dir);
            return t.check(f, program).map(|program| vec![program]);
        }
        _ => {}
    }
    let items = t.check(f, f.items().map_err(|_| f.expected(COMMAND)))?;
    if items.is_empty() {
        t.report(f.problem(NO_PROGRAM));
        return None;
    }
    let mut command = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let arg = item.string().and_then(|arg| {
            if i == 0 && arg.trim().is_empty() {
                Err("the program must not be empty".to_owned())
            } else {
                without_nul(arg)
            }
        });
        command.push(t.check(item, arg));
    }
    command.into_iter().collect()
}

/// `command = "program"`: a program without arguments. A string with spaces that names no
/// file is taken for a command line, which is not split.
fn program_alone(program: &str, base_dir: &Path) -> Result<String, String> {
    if program.trim().is_empty() {
        return Err(NO_PROGRAM.to_owned());
    }
    let program = without_nul(program.to_owned())?;
    let words: Vec<String> = program
        .split_whitespace()
        .map(|word| format!("{word:?}"))
        .collect();
    if words.len() > 1 && !base_dir.join(&program).is_file() {
        return Err(format!(
            "one string is the program alone, without arguments: write the program and its \
             arguments as a list, e.g. command = [{}]",
            words.join(", ")
        ));
    }
    Ok(program)
}

/// A program, argument or environment value: an OS string cannot hold a NUL.
fn without_nul(text: String) -> Result<String, String> {
    match text.contains('\0') {
        true => Err("must not contain a NUL character".to_owned()),
        false => Ok(text),
    }
}

/// `env`: variable names (not empty, without "=") and string values, in file order.
fn env(t: &mut Section) -> Vec<(String, String)> {
    let Some(f) = t.take("env") else {
        return Vec::new();
    };
    let mut env = Vec::new();
    for (name, name_at, value) in t.check(&f, f.entries(ENV)).unwrap_or_default() {
        let problem = if name.is_empty() {
            Some("an environment variable needs a name".to_owned())
        } else if name.contains(['=', '\0']) {
            Some("an environment variable's name cannot contain \"=\"".to_owned())
        } else {
            LISTEN_VARIABLES
                .iter()
                .find(|v| v.eq_ignore_ascii_case(&name))
                .map(|v| {
                    format!(
                        "{v} is set by harrier, to tell each instance where to listen \
                         (see listen)"
                    )
                })
        };
        if let Some(message) = problem {
            t.report(key_problem(&value, name_at, message));
            continue;
        }
        let text = value.string().and_then(without_nul);
        env.extend(t.check(&value, text).map(|text| (name, text)));
    }
    env
}

fn listen(f: &Field) -> Result<AppListen, String> {
    match f.choice(&LISTEN)? {
        "unix" if cfg!(not(unix)) => {
            Err("listen = \"unix\" is only available on Unix-like systems".to_owned())
        }
        "unix" => Ok(AppListen::Unix),
        _ => Ok(AppListen::Tcp),
    }
}

/// `ready`: "tcp", or the path of an HTTP check.
fn ready(f: &Field) -> Result<Readiness, String> {
    let expected = || f.expected("\"tcp\" or a path like \"/healthz\"");
    let text = f.string().map_err(|_| expected())?;
    if text.eq_ignore_ascii_case("tcp") {
        return Ok(Readiness::Tcp);
    }
    if !text.starts_with('/') {
        return Err(expected());
    }
    if text.contains('#') || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "{text:?}: write the path as it is sent, percent-encoded, without a fragment"
        ));
    }
    Ok(Readiness::Http(text))
}

/// `restart_delay` and `restart_delay_max`, which must not be shorter.
fn restart_delays(t: &mut Section, d: &AppConfig) -> (Duration, Duration) {
    let delay_at = t.take("restart_delay");
    let delay = delay_at.as_ref().and_then(|f| t.check(f, timeout(f)));
    let max_at = t.take("restart_delay_max");
    let max = max_at.as_ref().and_then(|f| t.check(f, timeout(f)));
    let show = |value: Duration| format_duration(value).trim_matches('"').to_owned();
    match (delay, &delay_at, max, &max_at) {
        (Some(delay), _, Some(max), Some(f)) if max < delay => t.report(f.problem(format!(
            "must not be shorter than restart_delay ({}), found {}",
            show(delay),
            show(max)
        ))),
        (Some(delay), Some(f), None, None) if delay > d.restart_delay_max => {
            t.report(f.problem(format!(
                "is longer than restart_delay_max ({}, the default): raise restart_delay_max \
                 too",
                show(d.restart_delay_max)
            )))
        }
        _ => {}
    }
    (
        delay.unwrap_or(d.restart_delay),
        max.unwrap_or(d.restart_delay_max),
    )
}

/// `rapid_fail`: "off" or a table over the defaults `d`.
fn rapid_fail(t: &mut Section, d: Option<RapidFail>) -> Option<RapidFail> {
    let Some(read) = t.off_or_table("rapid_fail", RAPID_FAIL) else {
        return d;
    };
    let mut r = read?;
    let d = d.unwrap_or_default();
    let rapid = RapidFail {
        crashes: r.read("crashes", d.crashes, |f| {
            narrow(in_range(f.count()?, 1, 1000)?, u32::MAX)
        }),
        window: r.read("window", d.window, timeout),
    };
    r.close_into(t);
    Some(rapid)
}

/// `recycle`: a table whose keys are each "off" (the default) or a limit.
fn recycle(t: &mut Section) -> Recycle {
    let Some(mut r) = t.take("recycle").and_then(|f| t.table(f, RECYCLE)) else {
        return Recycle::default();
    };
    let recycle = Recycle {
        requests: r.read("requests", None, |f| {
            f.or_keyword("off", |f| at_least(f.count()?, 1))
        }),
        memory: r.read("memory", None, |f| {
            f.or_keyword("off", |f| match f.size()? {
                bytes if bytes < MIN_MEMORY => Err(format!(
                    "must be at least {}, found {}",
                    format_size(MIN_MEMORY),
                    format_size(bytes)
                )),
                bytes => Ok(bytes),
            })
        }),
        after: r.read("after", None, |f| f.or_keyword("off", timeout)),
        at: times(&mut r),
    };
    r.close_into(t);
    recycle
}

/// `at`: distinct times of day, "HH:MM" in UTC, as minutes after midnight.
fn times(r: &mut Section) -> Vec<u16> {
    let Some(f) = r.take("at") else {
        return Vec::new();
    };
    let items = r.check(&f, f.items()).unwrap_or_default();
    let times = r.distinct_strings(items, |text| {
        time_of_day(text)
            .map(TimeOfDay)
            .ok_or_else(|| format!("expected {TIME_OF_DAY}, found {text:?}"))
    });
    times.into_iter().map(|t| t.0).collect()
}

/// Minutes after midnight that display as written ("03:30"), so that a time listed twice
/// is named the way the user wrote it.
#[derive(PartialEq)]
struct TimeOfDay(u16);

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&show_time(self.0))
    }
}

/// "HH:MM" as minutes after midnight.
fn time_of_day(text: &str) -> Option<u16> {
    let (hours, minutes) = text.split_once(':')?;
    let two_digits = |s: &str| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u16>().ok())
            .flatten()
    };
    let (hours, minutes) = (two_digits(hours)?, two_digits(minutes)?);
    (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
}

/// A time of day as it is written.
pub(crate) fn show_time(minutes: u16) -> String {
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day() {
        assert_eq!(time_of_day("00:00"), Some(0));
        assert_eq!(time_of_day("03:30"), Some(210));
        assert_eq!(time_of_day("23:59"), Some(1439));
        for bad in [
            "24:00", "3:30", "03:60", "0330", "03:3", "+3:30", "03:30:00",
        ] {
            assert_eq!(time_of_day(bad), None, "{bad}");
        }
        assert_eq!(show_time(210), "03:30");
    }

    #[test]
    fn a_program_alone() {
        let base = Path::new("/nonexistent");
        assert_eq!(program_alone("python", base), Ok("python".to_owned()));
        let err = program_alone("python app.py", base).unwrap_err();
        assert!(err.contains("[\"python\", \"app.py\"]"), "{err}");
    }
}
