//! `type = "rewrite"`: IIS URL Rewrite style rules (`[[sites.use.rules]]`), their model and
//! their reader. Regexes and `{...}` references are checked here, so that building the stage
//! cannot fail on user input.

use http::StatusCode;
use regex::{Regex, RegexBuilder};

use super::reader::{in_range, Field, Section};
use super::routes::{redirect_status, status};

mod print;
mod template;

pub(crate) use print::show_rules;
pub use template::{parse_template, TemplatePart};

/// `type = "rewrite"`: rules applied in order to the request path.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RewriteStage {
    /// The rules, in order; rewrites chain into later rules.
    pub rules: Vec<RewriteRule>,
}

/// One rule: a regex on the path, conditions, and what to do when both hold.
#[derive(Debug, Clone, PartialEq)]
pub struct RewriteRule {
    /// For logs.
    pub name: Option<String>,
    /// Regex on the path, with its leading `/` and without the query (`match`).
    pub pattern: String,
    /// Case-insensitive regexes (rule and conditions); IIS's default is true.
    pub ignore_case: bool,
    /// The rule applies when the path does NOT match (no `{R:n}` then).
    pub negate: bool,
    /// Conditions on server variables.
    pub conditions: Vec<RewriteCondition>,
    /// `true`: any condition suffices (`logical_grouping = "any"`); else all must hold.
    pub match_any: bool,
    /// What happens when the rule applies.
    pub action: RewriteAction,
    /// No later rule runs after this one applied.
    pub stop_processing: bool,
}

/// A condition: a server-variable template and a test on its value.
#[derive(Debug, Clone, PartialEq)]
pub struct RewriteCondition {
    /// The template, such as `{HTTP_HOST}` or `{REQUEST_FILENAME}`.
    pub input: String,
    /// The test.
    pub test: ConditionTest,
    /// The condition holds when the test fails.
    pub negate: bool,
}

/// What a condition checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionTest {
    /// The input matches this regex; its groups become `{C:n}`.
    Pattern(String),
    /// The input names a regular file (`true`) or does not (`false`).
    IsFile(bool),
    /// The input names a directory (`true`) or does not (`false`).
    IsDirectory(bool),
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RewriteAction {
    /// Internal: the request continues with this path (and query, when given).
    Rewrite {
        /// Target template.
        url: String,
        /// Keep the original query (after the target's own).
        append_query_string: bool,
    },
    /// Answer with a redirect to this URL.
    Redirect {
        /// Target template.
        url: String,
        /// 301, 302, 303, 307 or 308.
        status: StatusCode,
        /// Keep the original query (after the target's own).
        append_query_string: bool,
    },
    /// Answer with this status (and its plain-text reason as body).
    CustomResponse {
        /// The status.
        status: StatusCode,
    },
    /// Close the connection (HTTP/2: reset the stream) without a response.
    Abort,
    /// Nothing: with `stop_processing`, exempts requests from later rules.
    None,
}

/// Compiles a rule or condition regex the same way the stage does; bounded in size so a
/// hostile or careless pattern cannot take unbounded memory.
pub fn rewrite_regex(pattern: &str, ignore_case: bool) -> Result<Regex, String> {
    RegexBuilder::new(pattern)
        .case_insensitive(ignore_case)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regex: {e}"))
}

/// Checks a template; `groups` is the number of `{R:n}` the rule's match gives.
fn check_template(text: &str, groups: usize) -> Result<(), String> {
    for part in parse_template(text)? {
        if let TemplatePart::Rule(n) = part {
            if n >= groups {
                let have = groups.saturating_sub(1);
                return Err(format!("{{R:{n}}}: the rule's match has {have} group(s)"));
            }
        }
    }
    Ok(())
}

/// Reads a rewrite stage table (its `type` already read).
pub(crate) fn rewrite(t: &mut Section) -> RewriteStage {
    let rules = t.tables("rules", "[[sites.use.rules]]", rule);
    if rules.is_empty() {
        t.report(t.problem_at(
            "rules",
            "missing: a rewrite stage needs [[sites.use.rules]]",
        ));
    }
    RewriteStage {
        rules: rules.into_iter().flatten().collect(),
    }
}

fn rule(t: &mut Section) -> Option<RewriteRule> {
    let name = t.read("name", None, |f| f.string().map(Some));
    let ignore_case = t.read("ignore_case", true, Field::bool);
    let negate = t.read("negate", false, Field::bool);
    let regex = t
        .require(
            "match",
            "a rule needs a regex on the path, e.g. match = \"^/app/(.*)$\"",
        )
        .and_then(|f| {
            let r = f
                .string()
                .and_then(|p| rewrite_regex(&p, ignore_case).map(|r| (p, r)));
            t.check(&f, r)
        });
    // With `negate`, the path did not match: there are no groups, only {R:0}. Conditions
    // and the action's url both see the rule's groups.
    let groups = match (&regex, negate) {
        (Some((_, r)), false) => r.captures_len(),
        _ => 1,
    };
    let conditions = t.tables(
        "conditions",
        "conditions = [{ input = ..., pattern = ... }]",
        |c| condition(c, ignore_case, groups),
    );
    let match_any = t.read("logical_grouping", false, |f| {
        f.choice(&["all", "any"]).map(|g| g == "any")
    });
    let action = t
        .require(
            "action",
            "a rule needs an action, e.g. action = { type = \"rewrite\", url = \"/index.html\" }",
        )
        .and_then(|f| {
            t.table(
                f,
                "a table like { type = \"rewrite\", url = \"/index.html\" }",
            )
        })
        .and_then(|mut a| {
            let action = action(&mut a, groups);
            a.close_into(t);
            action
        });
    let stop_processing = t.read("stop_processing", false, Field::bool);
    Some(RewriteRule {
        name,
        pattern: regex?.0,
        ignore_case,
        negate,
        conditions: conditions.into_iter().collect::<Option<Vec<_>>>()?,
        match_any,
        action: action?,
        stop_processing,
    })
}

fn condition(t: &mut Section, ignore_case: bool, groups: usize) -> Option<RewriteCondition> {
    let input = t
        .require(
            "input",
            "a condition needs an input, e.g. input = \"{HTTP_HOST}\"",
        )
        .and_then(|f| {
            let r = f
                .string()
                .and_then(|s| check_template(&s, groups).map(|()| s));
            t.check(&f, r)
        });
    let negate = t.read("negate", false, Field::bool);
    let mut tests = Vec::new();
    if let Some(f) = t.take("pattern") {
        let r = f
            .string()
            .and_then(|p| rewrite_regex(&p, ignore_case).map(|_| p));
        tests.extend(t.check(&f, r).map(ConditionTest::Pattern));
    }
    if let Some(f) = t.take("is_file") {
        tests.extend(t.check(&f, f.bool()).map(ConditionTest::IsFile));
    }
    if let Some(f) = t.take("is_directory") {
        tests.extend(t.check(&f, f.bool()).map(ConditionTest::IsDirectory));
    }
    if tests.len() != 1 {
        let message = "a condition needs exactly one of pattern, is_file or is_directory";
        t.report(t.problem_at("pattern", message));
    }
    Some(RewriteCondition {
        input: input?,
        test: tests.pop()?,
        negate,
    })
}

const ACTIONS: [&str; 5] = ["rewrite", "redirect", "custom_response", "abort", "none"];

fn action(a: &mut Section, groups: usize) -> Option<RewriteAction> {
    let kind = a
        .require("type", "an action needs a type, e.g. type = \"rewrite\"")
        .and_then(|f| a.check(&f, f.choice(&ACTIONS)));
    let Some(kind) = kind else {
        a.skip_rest();
        return None;
    };
    let url = |a: &mut Section| {
        a.require("url", "this action needs a url, e.g. url = \"/index.html\"")
            .and_then(|f| {
                let r = f.string().and_then(|s| {
                    if s.trim().is_empty() {
                        return Err("must not be empty".to_owned());
                    }
                    check_template(&s, groups).map(|()| s)
                });
                a.check(&f, r)
            })
    };
    let append = |a: &mut Section| a.read("append_query_string", true, Field::bool);
    Some(match kind {
        "rewrite" => RewriteAction::Rewrite {
            url: url(a)?,
            append_query_string: append(a),
        },
        "redirect" => {
            let url = url(a);
            let status = a.read("status", StatusCode::MOVED_PERMANENTLY, redirect_status);
            RewriteAction::Redirect {
                url: url?,
                status,
                append_query_string: append(a),
            }
        }
        "custom_response" => RewriteAction::CustomResponse {
            status: a
                .require(
                    "status",
                    "a custom response needs a status, e.g. status = 403",
                )
                .and_then(|f| {
                    let r = f.count().and_then(|c| status(in_range(c, 200, 599)?));
                    a.check(&f, r)
                })?,
        },
        "abort" => RewriteAction::Abort,
        _ => RewriteAction::None,
    })
}
