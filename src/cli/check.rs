//! `replaydesk check`: the configuration is valid (it was loaded to get here), the store opens, and each
//! configured integration answers. One line per integration: ok, off (not configured), or why not; a
//! warning for each SQLite file of the store others than its owner may read (it is not failed: the
//! operator may have meant it, but should see it said).
//! Exit 1 when anything configured fails, or when FullStory, which everything needs, is not configured.

use crate::console::Failure;
use crate::{app::App, config::Config, store::redact_url};

pub async fn run(config: Config) -> Result<(), Failure> {
    let mut failed = false;
    println!("config     ok");
    let store_url = redact_url(&config.store.url);
    let app = match App::build(config, crate::clock::Clock::system()).await {
        Ok(app) => app,
        Err(error) => {
            println!("store      failed: {error:#}");
            return Err(Failure::failed("the store could not be opened"));
        }
    };
    match app.store.ping().await {
        Ok(()) => println!("store      ok ({store_url})"),
        Err(error) => {
            failed = true;
            println!("store      failed: {error:#}");
        }
    }
    for (file, mode) in crate::store::wider_than_private(&app.config.store.url) {
        println!(
            "store      warning: {} is mode {mode:04o}, readable by others than its owner (it holds \
             customer emails and reply tokens): chmod 600 it",
            file.display()
        );
    }
    if app.config.fullstory.api_key.is_set() {
        // `GET /v2/users/{id}` of nobody: in the seed OpenAPI, unmetered, reads nothing.
        match app.fullstory.verify_key().await {
            Ok(()) => println!("fullstory  ok ({}: key accepted)", app.fullstory.base_url()),
            Err(error) => {
                failed = true;
                println!("fullstory  failed: {error}");
            }
        }
    } else {
        failed = true;
        println!("fullstory  missing: set fullstory.api_key (an Admin or Architect key)");
    }
    match app.activations.report().await {
        Ok(report) => println!("{:<12} {}", "activations", report.line()),
        Err(error) => println!(
            "{:<12} unknown: the store could not be read ({error:#})",
            "activations"
        ),
    }
    if app.config.fullstory.api_key.is_set() && app.config.slack.signing_secret.is_set() {
        println!("{:<10} {}", "previews", previews(&app).await);
    }
    let fs = &app.config.fullstory;
    let limits = &app.config.limits;
    match (&limits.backend, &limits.redis_url) {
        (crate::config::LimitsBackend::Redis, Some(url)) => {
            match crate::outbound::ping_redis(url, std::time::Duration::from_secs(2)).await {
                Ok(()) => println!(
                    "limits     ok (redis: {}/s, burst {}, shared by every replica)",
                    fs.requests_per_second, fs.burst
                ),
                Err(error) => {
                    failed = true;
                    println!(
                        "limits     failed: Redis at limits.redis_url is unreachable ({error}); \
                         replicas would {}",
                        if limits.fail_closed {
                            "hold FullStory calls (fail_closed)"
                        } else {
                            "each use quota / limits.expected_replicas"
                        }
                    );
                }
            }
        }
        _ => println!(
            "limits     ok (local: {}/s, burst {}, this process only)",
            fs.requests_per_second, fs.burst
        ),
    }
    println!("{:<10} {}", "outages", outages(&app).await);
    failed |= !trackers(&app).await;
    for (name, on) in crate::wiring::integrations(&app.config) {
        println!(
            "{name:<10} {}",
            if on {
                "configured"
            } else {
                "off (its secrets are not set)"
            }
        );
    }
    for warning in open_tenancy(&app.config) {
        println!("tenancy    open: {warning}");
    }
    if failed {
        Err(Failure::failed("some checks failed (see above)"))
    } else {
        Ok(())
    }
}

/// Each tracker escalations may go to ([`crate::escalate`]), checked with one read-only call (who the
/// key or token belongs to, and the team or project); `false` when one configured fails.
async fn trackers(app: &App) -> bool {
    let trackers = match crate::escalate::Trackers::from_config(&app.config, &app.upstreams) {
        Ok(trackers) => trackers,
        Err(error) => {
            println!("trackers   failed: {error:#}");
            return false;
        }
    };
    let mut ok = true;
    for tracker in crate::escalate::Tracker::ALL {
        let name = tracker.as_str();
        match trackers.get(tracker) {
            None => println!("{name:<10} off (its secrets are not set)"),
            Some(client) => match client.check().await {
                Ok(found) => println!("{name:<10} ok ({found})"),
                Err(error) => {
                    ok = false;
                    println!("{name:<10} failed: {error}");
                }
            },
        }
    }
    ok
}

/// The enabled platforms that serve any tenant who reaches them (reported, not failed: a single-tenant
/// install may mean it, but an operator should see it said).
pub fn open_tenancy(config: &Config) -> Vec<String> {
    crate::adapters::enabled(config)
        .into_iter()
        .filter_map(|platform| platform.open_tenancy(config))
        .collect()
}

/// Whether Slack previews FullStory links, and of which organisation (said, not failed: previews are
/// optional, and the rest works without them).
async fn previews(app: &App) -> String {
    let configured = app.config.fullstory.org_id.is_some();
    match app.organisation.id(&app.fullstory).await {
        Ok(Some(org)) if configured => format!("on (links of {org}: fullstory.org_id)"),
        Ok(Some(org)) => format!("on (links of {org}, as FullStory says of the key)"),
        Ok(None) => crate::fullstory::org::PREVIEWS_OFF.to_owned(),
        Err(error) => format!(
            "unknown: FullStory did not say which organisation the key belongs to ({error})"
        ),
    }
}

/// Open circuit breakers (as shared through Redis with `limits.backend = "redis"`; a local breaker
/// lives in its `serve` process only) and the jobs waiting in the store for a down upstream. Said, not
/// failed: an outage is the upstream's, and the FullStory line above already fails when it is down.
async fn outages(app: &App) -> String {
    let shared = app.config.limits.backend == crate::config::LimitsBackend::Redis;
    let mut open = Vec::new();
    if shared {
        let platforms = crate::adapters::PLATFORMS
            .iter()
            .flat_map(|platform| platform.upstreams());
        for &name in crate::outbound::CORE_UPSTREAMS.iter().chain(platforms) {
            let breaker = app.upstreams.breakers.get(name);
            if breaker.refresh().await == crate::outbound::BreakerState::Open {
                open.push(format!("{name} breaker open"));
            }
        }
    }
    match app.store.count_waiting().await {
        Ok(waiting) => open.extend(
            waiting
                .into_iter()
                .map(|(upstream, n)| format!("{n} job(s) waiting on {upstream}")),
        ),
        Err(error) => open.push(format!("waiting jobs unknown ({error:#})")),
    }
    match (open.is_empty(), shared) {
        (true, true) => "none (no open circuit breaker, no job waiting on an upstream)".into(),
        (true, false) => "no job waiting on an upstream (breakers live in each serve process: \
                          replaydesk_upstream_breaker_state in its /metrics)"
            .into(),
        (false, _) => open.join("; "),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::{List, Secret, Secrets};

    #[test]
    fn every_enabled_platform_open_to_any_tenant_is_reported() {
        let mut config = Config::default();
        assert!(open_tenancy(&config).is_empty(), "nothing on, nothing open");
        config.slack.bot_token = Secret::new("xoxb-1");
        config.slack.signing_secret = Secrets::from_values(["s"]);
        config.zendesk.webhook_secret = Secrets::from_values(["w"]);
        config.zendesk.api_token = Secret::new("t");
        config.discord.application_id = Some("1234".into());
        config.discord.public_key = Some(crate::adapters::discord::verify::public_key(&[7; 32]));
        config.discord.allow_any_guild = true;
        let open = open_tenancy(&config).join("\n");
        assert!(open.contains("slack.allowed_team_ids"), "{open}");
        assert!(open.contains("zendesk.allowed_account_ids"), "{open}");
        assert!(open.contains("discord.allow_any_guild = true"), "{open}");

        config.slack.allowed_team_ids = List(vec!["T1".into()]);
        config.zendesk.allowed_account_ids = List(vec!["123".into()]);
        config.discord.allow_any_guild = false;
        config.discord.allowed_guild_ids = List(vec!["66".into()]);
        assert!(open_tenancy(&config).is_empty());
    }
}
