//! The Prometheus text format (0.0.4) from prometheus-client's OpenMetrics
//! output, for scrapers and tools that do not ask for OpenMetrics
//! (`promtool check metrics`, `curl`): counters are named with their
//! `_total` suffix in `# HELP`/`# TYPE`, `# UNIT` and `# EOF` go, `info` and
//! `unknown` become `gauge` and `untyped`.

use std::collections::HashSet;

/// Content type of the OpenMetrics text format.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Rewrite an OpenMetrics exposition as Prometheus text.
pub fn openmetrics_to_text(om: &str) -> String {
    let counters: HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let infos: HashSet<&str> = om
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" info"))
        .collect();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            out.push_str(&format!(
                "# HELP {} {help}\n",
                text_name(name, &counters, &infos)
            ));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let kind = match kind {
                "info" => "gauge",
                "unknown" | "stateset" | "gaugehistogram" => "untyped",
                k => k,
            };
            out.push_str(&format!(
                "# TYPE {} {kind}\n",
                text_name(name, &counters, &infos)
            ));
        } else if is_created_sample(line, &counters) {
            continue;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn text_name(name: &str, counters: &HashSet<&str>, infos: &HashSet<&str>) -> String {
    if counters.contains(name) {
        format!("{name}_total")
    } else if infos.contains(name) {
        format!("{name}_info")
    } else {
        name.to_string()
    }
}

/// `_created` samples of counters have no place in the text format.
fn is_created_sample(line: &str, counters: &HashSet<&str>) -> bool {
    let name = line.split(['{', ' ']).next().unwrap_or("");
    name.strip_suffix("_created")
        .is_some_and(|base| counters.contains(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_their_total_name_and_openmetrics_lines_go() {
        let om = "# HELP ifs_errors Errors.\n# TYPE ifs_errors counter\nifs_errors_total{kind=\"store\"} 1\nifs_errors_created 17\n# HELP ifs_disk_bytes Bytes.\n# TYPE ifs_disk_bytes gauge\n# UNIT ifs_disk_bytes bytes\nifs_disk_bytes{volume=\"a\",kind=\"used\"} 5\n# HELP b Build.\n# TYPE b info\nb_info{version=\"1\"} 1\n# EOF\n";
        let text = openmetrics_to_text(om);
        assert_eq!(
            text,
            "# HELP ifs_errors_total Errors.\n# TYPE ifs_errors_total counter\nifs_errors_total{kind=\"store\"} 1\n# HELP ifs_disk_bytes Bytes.\n# TYPE ifs_disk_bytes gauge\nifs_disk_bytes{volume=\"a\",kind=\"used\"} 5\n# HELP b_info Build.\n# TYPE b_info gauge\nb_info{version=\"1\"} 1\n"
        );
    }
}
