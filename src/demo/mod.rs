//! `replaydesk demo`: the whole pipeline on one machine, with no account anywhere.
//!
//! Why: the first thing a newcomer wants is to see what an agent would see, before creating a Slack app,
//! a Zendesk webhook, a Discord application and a FullStory key. The demo runs the *real* service (the
//! same service, router, queue workers and adapters as `serve`, assembled by [`crate::wiring`])
//! on a fresh SQLite store, and replaces only what lies outside it: a sample FullStory serving
//! `fixtures.json`, and the places answers go (Slack `response_url`s and Web API, the Zendesk API, Discord's
//! webhook edits, Intercom's contacts and notes), all on loopback ports ([`upstream`]). Its configuration is built here, with demo
//! secrets and every upstream URL pointed at those fakes; nothing from `replaydesk.toml` but `[log]` is
//! used, so the demo never reaches a real service.
//!
//! Then it plays one signed request per platform through the real HTTP stack ([`requests`]), waits for
//! the answers to arrive at the fakes (woken by each capture, bounded by [`ANSWER_TIMEOUT`]; no sleeps),
//! prints them as the platforms would draw them ([`show`]), prints `curl` lines signed at print time
//! (good for the platforms' 5-minute window) to try more by hand, and keeps running, printing each new
//! answer, until Ctrl-C (`--once`: exit after printing).
//!
//! Nothing in `serve` depends on this module.

pub mod requests;
pub mod show;
pub mod sidebar;
pub mod upstream;

use std::{net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use anyhow::Context;
use chrono::{DateTime, Utc};

use crate::{
    clock::Clock,
    config::{Config, LogConfig, Secret, Secrets},
    console::Failure,
    store,
};
use requests::Signed;
use upstream::{Credentials, Fixtures, Platform, Reply, Upstreams};

/// How long the demo waits for the three answers before saying which did not come.
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);

/// The demo's other credentials (the signing secrets are in [`requests`]).
const FULLSTORY_KEY: &str = "na1.replaydesk-demo-key";
const SLACK_BOT_TOKEN: &str = "xoxb-replaydesk-demo";
const ZENDESK_TOKEN: &str = "replaydesk-demo-zendesk-token";
const INTERCOM_TOKEN: &str = "replaydesk-demo-intercom-token";
const LINEAR_KEY: &str = "lin_api_replaydesk_demo";
/// The tag the first sample ticket carries: its customer's session is escalated to the fake Linear.
pub const ESCALATE_TAG: &str = "escalate-bug";
const SUMMARY_PROFILE: &str = "demo-support";

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Where the demo's server listens (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Keep the demo's SQLite store in this new file, to look at afterwards (default: a temporary
    /// directory, removed on exit). It must not exist yet: its tickets would already show the sessions.
    #[arg(long)]
    pub store: Option<PathBuf>,
    /// Exit after printing the answers and the curl lines, instead of running until Ctrl-C.
    #[arg(long)]
    pub once: bool,
}

/// The demo's server logs only warnings unless `log.level` was set: its output is the answers.
pub fn quiet(log: &mut LogConfig) {
    if log.level == LogConfig::default().level
        && std::env::var_os("REPLAYDESK_LOG__LEVEL").is_none()
    {
        log.level = "warn".into();
    }
}

/// A temporary directory for the store, removed when dropped.
struct TempStore(PathBuf);

impl Drop for TempStore {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The running demo: the real server on `server`, the fakes, and what they captured.
pub struct Demo {
    pub server: SocketAddr,
    pub upstreams: Upstreams,
    pub fixtures: Fixtures,
    /// `store.url`, as the demo configured it.
    pub store_url: String,
    http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
    _temp: Option<TempStore>,
}

impl Demo {
    /// Starts the fakes, then the real service configured against them.
    pub async fn start(args: &DemoArgs, log: LogConfig) -> anyhow::Result<Self> {
        let fixtures = Fixtures::load()?;
        let credentials = Credentials {
            fullstory_key: FULLSTORY_KEY.into(),
            slack_bot_token: SLACK_BOT_TOKEN.into(),
            zendesk_email: fixtures.zendesk.agent.email.clone(),
            zendesk_token: ZENDESK_TOKEN.into(),
            intercom_token: INTERCOM_TOKEN.into(),
            linear_key: LINEAR_KEY.into(),
        };
        let upstreams = Upstreams::start(fixtures.clone(), credentials, Utc::now()).await?;
        let (store_url, temp) = match &args.store {
            Some(path) => (format!("sqlite://{}", path.display()), None),
            None => {
                let dir = std::env::temp_dir()
                    .join(format!("replaydesk-demo-{}", uuid::Uuid::new_v4().simple()));
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("could not create {}", dir.display()))?;
                let url = format!("sqlite://{}", dir.join("replaydesk.db").display());
                (url, Some(TempStore(dir)))
            }
        };
        let config = config(&upstreams, &fixtures, &store_url, &args.listen, log)?;
        let service = crate::wiring::Service::build(config, Clock::system()).await?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("could not listen on --listen {}", args.listen))?;
        let server = listener.local_addr().context("no local address")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(service.run_until(listener, async move {
            let _ = stopped.await;
        }));
        Ok(Self {
            server,
            upstreams,
            fixtures,
            store_url,
            http: crate::outbound::http_client(Duration::from_secs(10))?,
            stop: Some(stop),
            serving,
            _temp: temp,
        })
    }

    /// The three requests the demo plays: one per platform, each about another customer.
    pub fn samples(&self, now: DateTime<Utc>) -> anyhow::Result<Vec<Signed>> {
        let ticket = self
            .fixtures
            .zendesk
            .tickets
            .first()
            .context("the fixtures hold no Zendesk ticket")?;
        Ok(vec![
            requests::slack_command(
                "jane@acme.com --summary",
                &upstream::response_url(self.upstreams.slack, &short_id()),
                now,
            ),
            requests::zendesk_ticket(ticket.id, &ticket.requester.email, now, now),
            requests::discord_find_replays(
                "hi, lee@initech.com here: Download PDF on my invoice does nothing",
                now - chrono::Duration::minutes(5),
                now,
            ),
            // The fixtures' first customer starts a conversation in Intercom.
            requests::intercom_conversation(
                "8801",
                &upstream::intercom_contact(0),
                "Hi, my payment keeps failing at checkout",
                now,
            ),
        ])
    }

    /// Three more, for the reader to send with curl: other customers, other commands.
    pub fn try_more(&self, now: DateTime<Utc>) -> Vec<Signed> {
        let mut more = vec![requests::slack_command(
            "lee@initech.com sam@umbrella.dev",
            &upstream::response_url(self.upstreams.slack, &short_id()),
            now,
        )];
        if let Some(ticket) = self.fixtures.zendesk.tickets.get(1) {
            more.push(requests::zendesk_ticket(
                ticket.id,
                &ticket.requester.email,
                now,
                now,
            ));
        }
        more.push(requests::discord_slash("omar@globex.io", true, now));
        if let Some(lee) = self.fixtures.customers.get(2) {
            more.push(requests::intercom_canvas(
                "8802",
                &upstream::intercom_contact(2),
                &lee.email,
                now,
            ));
        }
        more
    }

    /// Sends `request` to the demo's server: the status and body of its answer.
    pub async fn send(&self, request: &Signed) -> anyhow::Result<(u16, String)> {
        request.send(&self.http, self.server).await
    }

    /// Waits until `done` holds for the replies captured so far (woken by each new one), at most
    /// `timeout`. Returns whether it came to hold.
    pub async fn wait_until(&self, done: impl Fn(&[Reply]) -> bool, timeout: Duration) -> bool {
        let captured = &self.upstreams.captured;
        let mut changes = captured.subscribe();
        let waited = tokio::time::timeout(timeout, async {
            while !done(&captured.all()) {
                if changes.changed().await.is_err() {
                    break;
                }
            }
        })
        .await;
        waited.is_ok() && done(&captured.all())
    }

    /// The stand-in for Zendesk's ticket frame, loading the sidebar app of the first sample ticket.
    pub fn sidebar_url(&self) -> String {
        let ticket = self.fixtures.zendesk.tickets.first().map_or(0, |t| t.id);
        format!(
            "http://{}/demo/sidebar?ticket={ticket}&app=http%3A%2F%2F{}%2Fzendesk%2Fapp",
            self.upstreams.zendesk, self.server
        )
    }

    /// Stops the server (gracefully, as `serve` does on SIGTERM) and the fakes.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.serving
            .await
            .context("the demo server did not stop cleanly")?
    }
}

/// A short random id (for `response_url` paths).
fn short_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

/// The configuration of the demo's service: the defaults, demo secrets, every upstream at its fake.
fn config(
    upstreams: &Upstreams,
    fixtures: &Fixtures,
    store_url: &str,
    listen: &str,
    log: LogConfig,
) -> anyhow::Result<Config> {
    let mut config = Config::default();
    config.server.listen = listen.to_owned();
    config.store.url = store_url.to_owned();
    config.log = log;
    let fs = &mut config.fullstory;
    fs.api_key = Secret::new(FULLSTORY_KEY);
    fs.base_url = Some(format!("http://{}", upstreams.fullstory));
    fs.summary_profile = Some(SUMMARY_PROFILE.into());
    let slack = &mut config.slack;
    slack.signing_secret = Secrets::from_values([requests::SLACK_SIGNING_SECRET]);
    slack.bot_token = Secret::new(SLACK_BOT_TOKEN);
    slack.api_url = Some(format!("http://{}/api", upstreams.slack));
    // The fake Slack's `response_url`s are on loopback: listed like any other host.
    slack
        .response_url_hosts
        .0
        .push(upstreams.slack.ip().to_string());
    let zendesk = &mut config.zendesk;
    zendesk.base_url = Some(format!("http://{}", upstreams.zendesk));
    zendesk.email = Some(fixtures.zendesk.agent.email.clone());
    zendesk.api_token = Secret::new(ZENDESK_TOKEN);
    zendesk.webhook_secret = Secrets::from_values([requests::ZENDESK_WEBHOOK_SECRET]);
    zendesk.auto_summary = true;
    zendesk.app_public_key = Some(sidebar::DEMO_PUBLIC_KEY.into());
    zendesk.app_sdk_url = format!("http://{}/demo/zaf_sdk.js", upstreams.zendesk);
    let discord = &mut config.discord;
    discord.application_id = Some(requests::DISCORD_APPLICATION_ID.into());
    discord.public_key = Some(crate::adapters::discord::verify::public_key(
        &requests::DISCORD_SEED,
    ));
    discord.api_url = Some(format!("http://{}/api/v10", upstreams.discord));
    discord.allowed_guild_ids = crate::config::List(vec![requests::DISCORD_GUILD_ID.into()]);
    // Escalation (issue 25): a ticket tagged `escalate-bug` gets one issue on the fake Linear.
    config.zendesk.escalate_tag = Some(ESCALATE_TAG.into());
    let linear = &mut config.linear;
    linear.api_key = Secret::new(LINEAR_KEY);
    linear.team_id = Some(upstream::LINEAR_TEAM.into());
    linear.api_url = Some(format!("http://{}/graphql", upstreams.linear));
    let intercom = &mut config.intercom;
    intercom.client_secret = Secrets::from_values([requests::INTERCOM_CLIENT_SECRET]);
    intercom.access_token = Secret::new(INTERCOM_TOKEN);
    intercom.admin_id = Some("1".into());
    intercom.api_url = format!("http://{}", upstreams.intercom);
    intercom.allowed_workspace_ids = crate::config::List(vec![requests::INTERCOM_WORKSPACE.into()]);
    config
        .validate()
        .context("the demo's own configuration is invalid")?;
    Ok(config)
}

/// Whether every platform has answered: a Slack message, a Zendesk note and its tag, a Discord edit,
/// an Intercom note, and the first ticket's escalation: its Linear issue and the ticket's note naming
/// it.
pub fn all_answered(replies: &[Reply]) -> bool {
    let has = |wanted: fn(&Reply) -> bool| replies.iter().any(wanted);
    has(|r| r.platform() == Platform::Slack)
        && has(|r| matches!(r, Reply::ZendeskNote { .. }))
        && has(|r| matches!(r, Reply::ZendeskTags { .. }))
        && has(|r| r.platform() == Platform::Discord)
        && has(|r| r.platform() == Platform::Intercom)
        && has(|r| matches!(r, Reply::LinearIssue { .. }))
        && has(|r| matches!(r, Reply::ZendeskNote { html, .. } if html.contains("Escalated to")))
}

/// What `replaydesk demo` prints first, while the requests go out.
fn introduction(demo: &Demo) -> String {
    let up = &demo.upstreams;
    format!(
        "replaydesk demo: the real server, queue and adapters on http://{server}\n  \
         store: {store}\n  \
         sample FullStory on http://{fs} ({customers} customers from src/demo/fixtures.json)\n  \
         fake Slack on http://{slack}, Zendesk on http://{zd}, Discord on http://{dc}, Intercom on http://{ic}, Linear on http://{lin} (they record the answers)\n  \
         the Zendesk sidebar app, in your browser: {sidebar}\n",
        server = demo.server,
        store = store::redact_url(&demo.store_url),
        fs = up.fullstory,
        customers = demo.fixtures.customers.len(),
        slack = up.slack,
        zd = up.zendesk,
        dc = up.discord,
        ic = up.intercom,
        lin = up.linear,
        sidebar = demo.sidebar_url(),
    )
}

/// The immediate answer's gist: Slack's text, or the status alone.
fn acknowledgement(status: u16, body: &str) -> String {
    let text = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v["text"].as_str().map(str::to_owned));
    match text {
        Some(text) => format!("{status} \"{text}\""),
        None => status.to_string(),
    }
}

/// The curl lines and how long they are good for.
fn curl_section(demo: &Demo, now: DateTime<Utc>) -> String {
    let until = now + chrono::Duration::minutes(5);
    let mut out = format!(
        "Try more by hand: these are signed for {now} and valid until {until} (each platform's 5-minute \
         window); each is one delivery (sent twice, it is answered but runs once). Run `replaydesk demo` \
         again for fresh ones.\n\n",
        now = crate::render::utc(now),
        until = crate::render::utc(until),
    );
    for request in demo.try_more(now) {
        out.push_str(&format!(
            "# {}\n{}\n\n",
            request.label,
            request.curl(demo.server)
        ));
    }
    out
}

/// `replaydesk demo`.
pub async fn run(args: DemoArgs, log: LogConfig) -> Result<(), Failure> {
    if let Some(path) = args.store.as_deref().filter(|p| p.exists()) {
        // Zendesk never gets the same session twice on a ticket: the demo's tickets would get no note.
        return Err(Failure::usage(format!(
            "--store {}: the file exists; give a new one (the demo's tickets would already show \
             their sessions)",
            path.display()
        )));
    }
    let demo = Demo::start(&args, log).await?;
    println!("{}", introduction(&demo));
    for request in demo.samples(Utc::now())? {
        let (status, body) = demo.send(&request).await?;
        println!("→ {}  ⇒ {}", request.label, acknowledgement(status, &body));
        if status != 200 {
            let _ = demo.stop().await;
            return Err(Failure::failed(format!(
                "the demo server refused its own request ({status}): {body}"
            )));
        }
    }
    let answered = demo.wait_until(all_answered, ANSWER_TIMEOUT).await;
    println!();
    let replies = demo.upstreams.captured.all();
    for reply in &replies {
        println!("{}", show::reply(reply));
    }
    if !answered {
        let _ = demo.stop().await;
        return Err(Failure::failed(format!(
            "not every platform was answered within {} s; the log above says why",
            ANSWER_TIMEOUT.as_secs()
        )));
    }
    print!("{}", curl_section(&demo, Utc::now()));
    if !args.once {
        println!(
            "replaydesk demo keeps running: answers to your requests appear below. Ctrl-C stops it.\n"
        );
        follow(&demo, replies.len()).await;
    }
    demo.stop().await?;
    Ok(())
}

/// Prints each reply after the first `seen` as it arrives, until Ctrl-C or SIGTERM.
async fn follow(demo: &Demo, mut seen: usize) {
    let captured: Arc<_> = demo.upstreams.captured.clone();
    let mut changes = captured.subscribe();
    let shutdown = crate::server::shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            changed = changes.changed() => {
                if changed.is_err() {
                    break;
                }
                let replies = captured.all();
                for reply in replies.iter().skip(seen) {
                    println!("{}", show::reply(reply));
                }
                seen = replies.len();
            }
        }
    }
}
