//! The private app's package for `replaydesk zendesk app`: a ZAF v2 zip an admin uploads in Admin Center
//! (Apps and integrations → Apps → Zendesk Support apps → Upload private app).
//!
//! What it holds, after Zendesk's validator (`zendesk_apps_support`, PLATFORMS.md §1.1–1.2):
//! `manifest.json` (`author`, `defaultLocale` "en", `location.support.ticket_sidebar.url` =
//! `<url>/zendesk/app`, `frameworkVersion` "2.0", `signedUrls` true so Zendesk signs the first load,
//! `private` true, `version`), `translations/en.json` (`app.name`, the one key a private app must
//! have, plus the descriptions) and the logos `assets/logo.png` (320×320) and `assets/logo-small.png`
//! (128×128, with transparency). `zcli apps:validate` is not an offline check (it uploads the zip to a
//! Zendesk account), so the test suite checks these rules itself (`tests/data/check_zaf_package.py`,
//! the logos' sizes and PNG chunks included).
//!
//! The logos are static PNG files in the repository (`assets/zendesk-app/`, with `draw_logos.py`, the
//! script that drew them), so replaydesk has no image code; the zip is written by the `zip` crate with
//! stored entries only (its compression features are off: nothing here would gain from them).

use std::io::{Cursor, Write};

use serde_json::{Value, json};
use zip::{CompressionMethod, ZipWriter, write::SimpleFileOptions};

/// The package's files, in order: (path, bytes).
pub fn files(url: &str, author_name: &str, author_email: &str) -> Vec<(String, Vec<u8>)> {
    let url = url.trim_end_matches('/');
    vec![
        (
            "manifest.json".into(),
            pretty(&manifest(url, author_name, author_email)),
        ),
        ("translations/en.json".into(), pretty(&translations())),
        ("assets/logo.png".into(), LOGO.to_vec()),
        ("assets/logo-small.png".into(), LOGO_SMALL.to_vec()),
    ]
}

/// The zip of [`files`].
pub fn zip(url: &str, author_name: &str, author_email: &str) -> zip::result::ZipResult<Vec<u8>> {
    write_zip(&files(url, author_name, author_email))
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut text = serde_json::to_vec_pretty(value).unwrap_or_default();
    text.push(b'\n');
    text
}

/// `manifest.json` for replaydesk served at `url`.
pub fn manifest(url: &str, author_name: &str, author_email: &str) -> Value {
    json!({
        "name": "replaydesk",
        "author": {"name": author_name, "email": author_email, "url": url},
        "defaultLocale": "en",
        "private": true,
        "location": {"support": {"ticket_sidebar": {"url": format!("{url}/zendesk/app"), "flexible": true}}},
        "version": env!("CARGO_PKG_VERSION"),
        "frameworkVersion": "2.0",
        "signedUrls": true,
    })
}

/// `translations/en.json`.
pub fn translations() -> Value {
    json!({"app": {
        "name": "replaydesk",
        "short_description": "The customer's FullStory session replays beside the ticket.",
        "long_description": "Shows the sessions of the ticket's customers, newest first, marks the one live when \
            the ticket was created, summarizes a session on demand and adds the replays as an internal note.",
        "installation_instructions": "Run `replaydesk zendesk app --url https://your-replaydesk-host` and set \
            zendesk.app_public_key on the replaydesk server to the key it prints.",
    }})
}

/// The package's logos: static files drawn once (`assets/zendesk-app/draw_logos.py` is their source).
const LOGO: &[u8] = include_bytes!("../../../../assets/zendesk-app/logo.png");
const LOGO_SMALL: &[u8] = include_bytes!("../../../../assets/zendesk-app/logo-small.png");

/// A zip of stored entries (no compression: the logos are PNG, already compressed, and the JSON is a
/// few hundred bytes), dated 1980-01-01 so the same input gives the same bytes.
pub fn write_zip(files: &[(String, Vec<u8>)]) -> zip::result::ZipResult<Vec<u8>> {
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Stored)
        .last_modified_time(zip::DateTime::default());
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    for (name, data) in files {
        zip.start_file(name.as_str(), options)?;
        zip.write_all(data)?;
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_package_is_a_zip_of_its_files_and_the_same_input_gives_the_same_bytes() {
        let bytes = zip("https://rd.example.com/", "replaydesk", "rd@example.com").unwrap();
        let again = zip("https://rd.example.com", "replaydesk", "rd@example.com").unwrap();
        assert_eq!(bytes, again);
        let mut archive = zip::ZipArchive::new(Cursor::new(&bytes)).unwrap();
        let files = files("https://rd.example.com", "replaydesk", "rd@example.com");
        assert_eq!(archive.len(), files.len());
        for (name, data) in files {
            let mut entry = archive.by_name(&name).unwrap();
            assert_eq!(entry.compression(), CompressionMethod::Stored, "{name}");
            let mut read = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut read).unwrap();
            assert_eq!(read, data, "{name}");
        }
    }
}
