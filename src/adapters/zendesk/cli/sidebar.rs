//! `app --url https://host --out replaydesk.zip`: writes the ticket sidebar app's ZAF v2 package
//! ([`crate::adapters::zendesk::app::package`]) for Admin Center's "Upload private app"; with `zendesk.app_id` and an
//! API credential it also fetches the uploaded app's public key and prints the
//! `zendesk.app_public_key` line to set.

use super::{AppArgs, api, print_setting, public_url, zendesk_failure};
use crate::{config::Config, console::Failure, metrics::UpstreamMetrics};

pub(super) async fn run(config: Config, args: AppArgs) -> Result<(), Failure> {
    let url = public_url(&config, args.url)?;
    let base = url.as_str().trim_end_matches('/').to_owned();
    let email = args
        .author_email
        .or_else(|| config.zendesk.email.clone())
        .unwrap_or_else(|| format!("replaydesk@{}", url.host_str().unwrap_or("localhost")));
    let zip = crate::adapters::zendesk::app::package::zip(&base, &args.author_name, &email)
        .map_err(|e| Failure::failed(format!("could not build the app's package: {e}")))?;
    std::fs::write(&args.out, &zip)
        .map_err(|e| Failure::failed(format!("could not write {}: {e}", args.out.display())))?;
    println!(
        "wrote {} ({} bytes): the ticket sidebar app, loading {base}/zendesk/app",
        args.out.display(),
        zip.len()
    );
    println!(
        "Upload it in Admin Center: Apps and integrations > Apps > Zendesk Support apps > Upload private app."
    );
    let credentials = config.zendesk.api_token.is_set() || config.zendesk.oauth_token.is_set();
    match (&config.zendesk.app_id, credentials) {
        (Some(app_id), true) => {
            let pem = api(&config, UpstreamMetrics::default())?
                .app_public_key(app_id)
                .await
                .map_err(zendesk_failure("reading the app's public key"))?;
            print_setting(
                "the app's public key",
                &format!("app_public_key = \"\"\"\n{pem}\"\"\""),
            );
        }
        _ => {
            println!(
                "Then set zendesk.app_id to the uploaded app's id and run this again to print its public key \
                 for zendesk.app_public_key (or: curl https://SUBDOMAIN.zendesk.com/api/v2/apps/APP_ID/public_key.pem)."
            );
        }
    }
    Ok(())
}
