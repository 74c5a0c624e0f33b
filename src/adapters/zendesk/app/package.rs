//! The private app's package for `replaydesk zendesk app`: a ZAF v2 zip an admin uploads in Admin Center
//! (Apps and integrations → Apps → Zendesk Support apps → Upload private app).
//!
//! What it holds, after Zendesk's validator (`zendesk_apps_support`, PLATFORMS.md §1.1–1.2):
//! `manifest.json` (`author`, `defaultLocale` "en", `location.support.ticket_sidebar.url` =
//! `<url>/zendesk/app`, `frameworkVersion` "2.0", `signedUrls` true so Zendesk signs the first load,
//! `private` true, `version`), `translations/en.json` (`app.name`, the one key a private app must
//! have, plus the descriptions) and the logos `assets/logo.png` (320×320) and `assets/logo-small.png`
//! (128×128, with transparency). `zcli apps:validate` is not an offline check (it uploads the zip to a
//! Zendesk account), so the test suite checks these rules itself.
//!
//! No image or zip crate: the logos are drawn here and written as PNG (one IDAT of stored-deflate zlib
//! blocks), the zip has stored entries; both need only CRC-32 (and Adler-32 for zlib).

use serde_json::{Value, json};

/// The package's files, in order: (path, bytes).
pub fn files(url: &str, author_name: &str, author_email: &str) -> Vec<(String, Vec<u8>)> {
    let url = url.trim_end_matches('/');
    vec![
        (
            "manifest.json".into(),
            pretty(&manifest(url, author_name, author_email)),
        ),
        ("translations/en.json".into(), pretty(&translations())),
        ("assets/logo.png".into(), logo(320, false)),
        ("assets/logo-small.png".into(), logo(128, true)),
    ]
}

/// The zip of [`files`].
pub fn zip(url: &str, author_name: &str, author_email: &str) -> Vec<u8> {
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

/// CRC-32 (IEEE, as zip and PNG use it).
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffff_u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in bytes {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    (b << 16) | a
}

/// A zlib stream of stored (uncompressed) deflate blocks.
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(65_535).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xff, 0xff]);
    }
    while let Some(chunk) = chunks.next() {
        out.push(u8::from(chunks.peek().is_none()));
        let len = u16::try_from(chunk.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    out.extend_from_slice(&adler32(data).to_be_bytes());
    out
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&u32::try_from(data.len()).unwrap_or(0).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// replaydesk's logo, `size`×`size` RGBA: a white "play" triangle on Garden blue; the small one on a
/// transparent background in a rounded square (the large one square: Zendesk asks for no rounded corners).
pub fn logo(size: u32, rounded: bool) -> Vec<u8> {
    let s = f64::from(size);
    let mut raw = Vec::with_capacity((size as usize * 4 + 1) * size as usize);
    for y in 0..size {
        raw.push(0); // filter: none
        for x in 0..size {
            let (fx, fy) = ((f64::from(x) + 0.5) / s, (f64::from(y) + 0.5) / s);
            let corner = 0.18;
            let inside = !rounded || {
                let dx = (corner - fx).max(fx - (1.0 - corner)).max(0.0);
                let dy = (corner - fy).max(fy - (1.0 - corner)).max(0.0);
                dx * dx + dy * dy <= corner * corner
            };
            // The triangle: from (0.38, 0.28) and (0.38, 0.72) to (0.74, 0.5).
            let play = (0.38..=0.74).contains(&fx) && (fy - 0.5).abs() <= 0.22 * (0.74 - fx) / 0.36;
            let pixel: [u8; 4] = match (inside, play) {
                (false, _) => [0, 0, 0, 0],
                (true, true) => [255, 255, 255, 255],
                (true, false) => [0x1f, 0x73, 0xb7, 255],
            };
            raw.extend_from_slice(&pixel);
        }
    }
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = Vec::with_capacity(13);
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(&size.to_be_bytes());
    header.extend_from_slice(&[8, 6, 0, 0, 0]); // 8-bit RGBA, deflate, adaptive filters, no interlace
    png_chunk(&mut png, b"IHDR", &header);
    png_chunk(&mut png, b"IDAT", &zlib_stored(&raw));
    png_chunk(&mut png, b"IEND", &[]);
    png
}

/// A zip of stored entries (no compression), dated 1980-01-01 so the same input gives the same bytes.
pub fn write_zip(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    const DOS_DATE: u16 = (1 << 5) | 1; // 1980-01-01
    let mut out = Vec::new();
    let mut central = Vec::new();
    let as_u32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    for (name, data) in files {
        let offset = as_u32(out.len());
        let crc = crc32(data);
        let name_len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        let mut common = Vec::new();
        common.extend_from_slice(&20u16.to_le_bytes()); // version needed
        common.extend_from_slice(&0u16.to_le_bytes()); // flags
        common.extend_from_slice(&0u16.to_le_bytes()); // stored
        common.extend_from_slice(&0u16.to_le_bytes()); // time
        common.extend_from_slice(&DOS_DATE.to_le_bytes());
        common.extend_from_slice(&crc.to_le_bytes());
        common.extend_from_slice(&as_u32(data.len()).to_le_bytes());
        common.extend_from_slice(&as_u32(data.len()).to_le_bytes());
        common.extend_from_slice(&name_len.to_le_bytes());
        common.extend_from_slice(&0u16.to_le_bytes()); // extra length
        out.extend_from_slice(&0x0403_4b50_u32.to_le_bytes());
        out.extend_from_slice(&common);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(data);
        central.extend_from_slice(&0x0201_4b50_u32.to_le_bytes());
        central.extend_from_slice(&20u16.to_le_bytes()); // made by
        central.extend_from_slice(&common);
        central.extend_from_slice(&[0; 6]); // comment length, disk, internal attributes
        central.extend_from_slice(&0u32.to_le_bytes()); // external attributes
        central.extend_from_slice(&offset.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let central_offset = as_u32(out.len());
    let count = u16::try_from(files.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&central);
    out.extend_from_slice(&0x0605_4b50_u32.to_le_bytes());
    out.extend_from_slice(&[0; 4]); // disk numbers
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&count.to_le_bytes());
    out.extend_from_slice(&as_u32(central.len()).to_le_bytes());
    out.extend_from_slice(&central_offset.to_le_bytes());
    out.extend_from_slice(&0u16.to_le_bytes()); // comment length
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_and_adler32_match_their_known_answers() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(adler32(b"Wikipedia"), 0x11e6_0398);
    }

    #[test]
    fn a_logo_says_its_size_in_its_header() {
        let png = logo(128, true);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        assert_eq!(&png[12..16], b"IHDR");
        assert_eq!(&png[16..24], &[0, 0, 0, 128, 0, 0, 0, 128]);
    }
}
