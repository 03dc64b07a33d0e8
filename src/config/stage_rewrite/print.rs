//! The rewrite stage in the effective configuration (`harrier check`).

use super::{ConditionTest, RewriteAction, RewriteCondition, RewriteStage};

/// The stage's `rules` as an inline array, for the effective configuration: one inline
/// table per rule, so it prints the same under `[[sites.use]]` and a route's `use`.
pub(crate) fn show_rules(stage: &RewriteStage) -> String {
    use crate::config::print::quote;
    let rules: Vec<String> = stage
        .rules
        .iter()
        .map(|r| {
            let mut parts = Vec::new();
            if let Some(name) = &r.name {
                parts.push(format!("name = {}", quote(name)));
            }
            parts.push(format!("match = {}", quote(&r.pattern)));
            parts.push(format!("ignore_case = {}", r.ignore_case));
            parts.push(format!("negate = {}", r.negate));
            let conditions: Vec<String> = r.conditions.iter().map(show_condition).collect();
            parts.push(format!("conditions = [{}]", conditions.join(", ")));
            let grouping = if r.match_any { "any" } else { "all" };
            parts.push(format!("logical_grouping = {}", quote(grouping)));
            parts.push(format!("action = {}", show_action(&r.action)));
            parts.push(format!("stop_processing = {}", r.stop_processing));
            format!("{{ {} }}", parts.join(", "))
        })
        .collect();
    format!("[\n  {},\n]", rules.join(",\n  "))
}

fn show_condition(c: &RewriteCondition) -> String {
    use crate::config::print::quote;
    let test = match &c.test {
        ConditionTest::Pattern(p) => format!("pattern = {}", quote(p)),
        ConditionTest::IsFile(b) => format!("is_file = {b}"),
        ConditionTest::IsDirectory(b) => format!("is_directory = {b}"),
    };
    format!(
        "{{ input = {}, {test}, negate = {} }}",
        quote(&c.input),
        c.negate
    )
}

fn show_action(a: &RewriteAction) -> String {
    use crate::config::print::quote;
    match a {
        RewriteAction::Rewrite {
            url,
            append_query_string,
        } => format!(
            "{{ type = \"rewrite\", url = {}, append_query_string = {append_query_string} }}",
            quote(url)
        ),
        RewriteAction::Redirect {
            url,
            status,
            append_query_string,
        } => format!(
            "{{ type = \"redirect\", url = {}, status = {}, append_query_string = {append_query_string} }}",
            quote(url),
            status.as_u16()
        ),
        RewriteAction::CustomResponse { status } => {
            format!("{{ type = \"custom_response\", status = {} }}", status.as_u16())
        }
        RewriteAction::Abort => "{ type = \"abort\" }".to_owned(),
        RewriteAction::None => "{ type = \"none\" }".to_owned(),
    }
}
