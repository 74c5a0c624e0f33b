//! Which text format `GET /metrics` answers in, chosen from the scraper's `Accept` header.
//!
//! Two formats, both validated in CI (`tests/contracts/run`: `promtool check metrics` and a strict
//! OpenMetrics parser):
//! - **OpenMetrics 1.0.0** (`application/openmetrics-text; version=1.0.0`) for a scraper that asks for
//!   `application/openmetrics-text` with a higher weight than anything else (Prometheus does by default);
//! - **the Prometheus text format 0.0.4** (`text/plain; version=0.0.4`) for one that asks for
//!   `text/plain`, and — our decision — for one that sends no `Accept`, `*/*`, or only types we do not
//!   speak (protobuf): the classic format is what `curl`, `promtool`, older agents and people read, and a
//!   scraper that wants OpenMetrics says so. We never answer 406: a scrape that fails is worse than one
//!   in the format every Prometheus-compatible scraper parses.
//!
//! The weights (`q`) decide; a missing `q` is 1, `q=0` means "not this one", unknown parameters
//! (`escaping=…`, `version=…`) are ignored, and between equal weights the earlier entry wins.
//!
//! The registry encodes OpenMetrics ([`prometheus_client`]); [`to_prometheus_text`] turns that into
//! 0.0.4: a counter family `foo` with samples `foo_total` is named `foo_total` in its `# HELP` and
//! `# TYPE` lines (0.0.4 names a family by its samples, so `promtool` would otherwise find no help text),
//! `info` becomes a gauge named `foo_info`, `unknown` becomes `untyped`, and `# UNIT` and `# EOF` (not
//! part of 0.0.4) are dropped. Samples are the same in both formats.

use std::collections::HashMap;

/// An exposition format `GET /metrics` can answer in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `text/plain; version=0.0.4`.
    PrometheusText,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl Format {
    /// The format for an `Accept` header (see the module doc for the rules).
    pub fn negotiate(accept: Option<&str>) -> Self {
        let mut best: Option<(f32, Self)> = None;
        for entry in accept.unwrap_or_default().split(',') {
            let mut parts = entry.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(Some(1.0), |(_, v)| v.trim().parse::<f32>().ok())
                .unwrap_or(0.0);
            let format = match media.as_str() {
                "application/openmetrics-text" => Self::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Self::PrometheusText,
                _ => continue,
            };
            if q > 0.0 && best.is_none_or(|(weight, _)| q > weight) {
                best = Some((q, format));
            }
        }
        best.map_or(Self::PrometheusText, |(_, format)| format)
    }

    /// The `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::PrometheusText => "text/plain; version=0.0.4; charset=utf-8",
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The Prometheus text format 0.0.4 of an OpenMetrics exposition made by [`prometheus_client`].
pub fn to_prometheus_text(openmetrics: &str) -> String {
    // The family names whose 0.0.4 name differs (counters, infos), and their 0.0.4 name and type.
    let renamed: HashMap<&str, (String, &str)> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .filter_map(|(name, kind)| match kind {
            "counter" => Some((name, (format!("{name}_total"), "counter"))),
            "info" => Some((name, (format!("{name}_info"), "gauge"))),
            "unknown" => Some((name, (name.to_owned(), "untyped"))),
            _ => None,
        })
        .collect();
    let mut out = String::with_capacity(openmetrics.len());
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let descriptor = ["# HELP ", "# TYPE "]
            .into_iter()
            .find_map(|prefix| Some((prefix, line.strip_prefix(prefix)?)));
        match descriptor {
            Some((prefix, rest)) => {
                let (name, tail) = rest.split_once(' ').unwrap_or((rest, ""));
                match renamed.get(name) {
                    Some((new_name, kind)) if prefix == "# TYPE " => {
                        out.push_str(&format!("# TYPE {new_name} {kind}"));
                    }
                    Some((new_name, _)) => out.push_str(&format!("{prefix}{new_name} {tail}")),
                    None => out.push_str(line),
                }
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_gets_openmetrics_and_curl_gets_the_classic_text() {
        let prometheus_3 = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,\
            application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;\
            escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        let prometheus_2 = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
            version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(Format::negotiate(Some(prometheus_3)), Format::OpenMetrics);
        assert_eq!(Format::negotiate(Some(prometheus_2)), Format::OpenMetrics);
        for classic in [
            None,
            Some(""),
            Some("*/*"),
            Some("text/plain"),
            Some("text/plain; version=0.0.4"),
            Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily"),
            Some("application/openmetrics-text;q=0, text/plain;q=0.1"),
            Some("text/plain;q=0.9, application/openmetrics-text;q=0.5"),
            Some("text/plain;q=oops, */*;q=0.1"),
        ] {
            assert_eq!(
                Format::negotiate(classic),
                Format::PrometheusText,
                "{classic:?}"
            );
        }
    }

    #[test]
    fn counters_are_named_by_their_samples_in_the_classic_text() {
        let om = "# HELP a_requests Requests.\n# TYPE a_requests counter\n\
                  a_requests_total{x=\"1\"} 3\n\
                  # HELP a_wait_seconds Wait.\n# TYPE a_wait_seconds histogram\n# UNIT a_wait_seconds seconds\n\
                  a_wait_seconds_sum 0.0\na_wait_seconds_count 0\na_wait_seconds_bucket{le=\"+Inf\"} 0\n\
                  # HELP a_build Build.\n# TYPE a_build info\na_build_info{v=\"1\"} 1\n\
                  # HELP a_jobs Jobs.\n# TYPE a_jobs gauge\na_jobs 2\n# EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\n\
             a_requests_total{x=\"1\"} 3\n\
             # HELP a_wait_seconds Wait.\n# TYPE a_wait_seconds histogram\n\
             a_wait_seconds_sum 0.0\na_wait_seconds_count 0\na_wait_seconds_bucket{le=\"+Inf\"} 0\n\
             # HELP a_build_info Build.\n# TYPE a_build_info gauge\na_build_info{v=\"1\"} 1\n\
             # HELP a_jobs Jobs.\n# TYPE a_jobs gauge\na_jobs 2\n"
        );
    }
}
