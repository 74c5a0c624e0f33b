//! Embeds the store's migrations: every `src/store/migrations/<backend>/<VERSION>_<NAME>.sql` becomes
//! an entry of `$OUT_DIR/migrations_<backend>.rs` (`store::migrate::Embedded`: version, description,
//! `include_str!` of the file), in version order, which `src/store/migrate.rs` turns into sqlx's
//! `Migrator`. So adding a migration
//! is adding its file, as with sqlx's `migrate!`, which reads the same file names; replaydesk does not
//! use that macro because it compiles sqlx, SQLite and the PostgreSQL driver a second time for the
//! compiler (measured: about 110 s of CPU on a cold release build, in docs/architecture.md). The
//! description is sqlx's (the name with `_` as spaces), so `sqlx migrate info` sees the same migrations.
//!
//! A file that does not follow the pattern (no version, two files of one version, `.up.sql`/
//! `.down.sql`: replaydesk's migrations only go forward) fails the build, naming the file.

use std::{env, error::Error, fmt::Write as _, fs, path::Path};

const BACKENDS: [&str; 2] = ["sqlite", "postgres"];

fn main() -> Result<(), Box<dyn Error>> {
    let root = env::var("CARGO_MANIFEST_DIR")?;
    let out = env::var("OUT_DIR")?;
    for backend in BACKENDS {
        let dir = Path::new(&root).join("src/store/migrations").join(backend);
        println!("cargo:rerun-if-changed={}", dir.display());
        let mut migrations = Vec::new();
        for entry in fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| format!("{}: not a UTF-8 file name", path.display()))?;
            let Some(stem) = name.strip_suffix(".sql") else {
                continue;
            };
            let (version, description) = stem
                .split_once('_')
                .filter(|(v, d)| !v.is_empty() && !d.is_empty() && !d.contains('.'))
                .ok_or_else(|| {
                    format!("{backend}/{name}: a migration is named <VERSION>_<NAME>.sql")
                })?;
            let version: i64 = version
                .parse()
                .map_err(|_| format!("{backend}/{name}: the version is not a number"))?;
            migrations.push((version, description.replace('_', " "), path.clone()));
        }
        migrations.sort_by_key(|(version, _, _)| *version);
        if let Some(pair) = migrations.windows(2).find(|w| w[0].0 == w[1].0) {
            return Err(format!("{backend}: two migrations have version {}", pair[0].0).into());
        }
        let mut code = String::from("&[\n");
        for (version, description, path) in &migrations {
            writeln!(
                code,
                "    crate::store::migrate::Embedded {{ version: {version}, description: {description:?}, \
                 sql: include_str!({:?}) }},",
                path.display().to_string()
            )?;
        }
        code.push_str("]\n");
        fs::write(
            Path::new(&out).join(format!("migrations_{backend}.rs")),
            code,
        )?;
    }
    Ok(())
}
