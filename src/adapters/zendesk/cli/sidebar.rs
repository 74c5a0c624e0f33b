//! `app --url https://host --out replaydesk.zip [--force]`: writes the ticket sidebar app's ZAF v2
//! package ([`crate::adapters::zendesk::sidebar::package`]) for Admin Center's "Upload private app"; with
//! `zendesk.app_id` and an API credential it also fetches the uploaded app's public key and prints the
//! `zendesk.app_public_key` line to set.
//!
//! The package makes every agent's browser load `--url`: it must be https (http only to a loopback
//! host, for a local try). `--out` is never written through a symbolic link (a link planted where the
//! zip goes would otherwise have its target overwritten) and never replaced without `--force`; with
//! it, an existing regular file is replaced whole (written beside it, then renamed over it).

use std::path::Path;

use super::{AppArgs, api, print_setting, public_url, zendesk_failure};
use crate::{config::Config, console::Failure, outbound::Upstreams};

pub(super) async fn run(config: Config, args: AppArgs) -> Result<(), Failure> {
    let url = public_url(&config, args.url)?;
    https_unless_loopback(&url)?;
    let base = url.as_str().trim_end_matches('/').to_owned();
    let email = args
        .author_email
        .or_else(|| config.zendesk.email.clone())
        .unwrap_or_else(|| format!("replaydesk@{}", url.host_str().unwrap_or("localhost")));
    let zip = crate::adapters::zendesk::sidebar::package::zip(&base, &args.author_name, &email)
        .map_err(|e| Failure::failed(format!("could not build the app's package: {e}")))?;
    write_new(&args.out, &zip, args.force)?;
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
            let pem = api(&config, Upstreams::default())?
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

/// The sidebar's URL: https, or http to a loopback host (a local try); anything else is refused.
fn https_unless_loopback(url: &reqwest::Url) -> Result<(), Failure> {
    let loopback = crate::outbound::is_loopback_host(url.host_str().unwrap_or(""));
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err(Failure::usage(format!(
            "--url `{url}` must be https (every agent's browser loads the sidebar from it; http only \
             to a loopback host, for a local try)"
        ))),
    }
}

/// Writes `bytes` to `out` without following a symbolic link there, and without replacing an existing
/// file unless `force` (then the new file is written beside `out` and renamed over it, which replaces
/// the name, never what a link points to).
fn write_new(out: &Path, bytes: &[u8], force: bool) -> Result<(), Failure> {
    use std::io::Write;
    let shown = out.display();
    match std::fs::symlink_metadata(out) {
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(Failure::usage(format!(
                "{shown} is a symbolic link: replaydesk never writes through one (remove it, or give \
                 another --out)"
            )));
        }
        Ok(meta) if !meta.is_file() => {
            return Err(Failure::usage(format!(
                "{shown} exists and is not a regular file: give another --out"
            )));
        }
        Ok(_) if !force => {
            return Err(Failure::usage(format!(
                "{shown} already exists: give --force to replace it, or another --out"
            )));
        }
        Ok(_) | Err(_) => {}
    }
    let failed = |e: std::io::Error| Failure::failed(format!("could not write {shown}: {e}"));
    // `create_new` is O_CREAT|O_EXCL: it fails on anything at the path, a link planted meanwhile too.
    let create = |path: &Path| -> std::io::Result<()> {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if written.is_err() {
            let _ = std::fs::remove_file(path);
        }
        written
    };
    if !force {
        return create(out).map_err(failed);
    }
    let dir = out
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = out
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let temporary = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    create(&temporary).map_err(failed)?;
    std::fs::rename(&temporary, out).map_err(|e| {
        let _ = std::fs::remove_file(&temporary);
        failed(e)
    })
}
