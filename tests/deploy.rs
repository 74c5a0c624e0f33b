//! The deployment kit in `deploy/`, checked offline: every YAML and JSON file parses; the Kubernetes
//! objects, the compose file, the Dockerfile and the systemd unit say what the service needs (two probed,
//! non-root replicas on PostgreSQL and Redis, graceful stops longer than `server.shutdown_grace`); every
//! configuration they set loads through the crate's own loader (so a renamed or misspelt key fails here);
//! the platform setup files are byte for byte what the binary prints; and the Grafana dashboard queries
//! only metric names a running server exposes on `GET /metrics`.
//!
//! Regenerate the platform files with `deploy/regenerate.sh` (`DEPLOY_REGENERATE=1 cargo test --test
//! deploy platform_files`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::Duration,
};

use replaydesk::{
    app::App,
    clock::Clock,
    config::{Config, LimitsBackend},
    identity::{CustomerEmail, Identity},
};
use serde_json::{Value, json};
use tempfile::TempDir;
use wiremock::{
    Mock, MockServer, ResponseTemplate,
    matchers::{method, path},
};
use yaml_rust2::{Yaml, YamlLoader};

// ---- files

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let file = repo().join(relative);
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

fn yaml(relative: &str) -> Vec<Yaml> {
    YamlLoader::load_from_str(&read(relative)).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap().path();
        if entry.is_dir() {
            files(&entry, out);
        } else {
            out.push(entry);
        }
    }
}

fn s(value: &Yaml) -> &str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value:?}"))
}

/// The `KEY=VALUE` lines of an env file (comments and blank lines skipped).
fn env_file(relative: &str) -> BTreeMap<String, String> {
    read(relative)
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .map(|line| {
            let (key, value) = line
                .split_once('=')
                .unwrap_or_else(|| panic!("{relative}: `{line}` is not KEY=VALUE"));
            (key.to_owned(), value.to_owned())
        })
        .collect()
}

/// Loads the configuration a deployment gives replaydesk: `file` overlaid by `env`, through the crate's
/// own loader (`Config::load`, unknown keys refused, every value validated).
#[allow(clippy::result_large_err)] // figment's Jail API returns its own error type
fn load_config(file: &str, env: &BTreeMap<String, String>) -> Result<Config, String> {
    let dir = TempDir::new().unwrap();
    let toml = dir.path().join("replaydesk.toml");
    std::fs::write(&toml, file).unwrap();
    let mut loaded = Err(String::new());
    figment::Jail::expect_with(|jail| {
        for (key, value) in env {
            assert!(
                key.starts_with("REPLAYDESK_"),
                "{key} is not a replaydesk variable"
            );
            jail.set_env(key, value);
        }
        loaded = Config::load(Some(&toml)).map_err(|e| e.to_string());
        Ok(())
    });
    loaded
}

/// The configuration variables (`REPLAYDESK_<SECTION>__<KEY>`) of an environment, which `Config::load`
/// reads; `REPLAYDESK_CONFIG` names the file and is checked by the caller.
fn config_vars(env: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    env.iter()
        .filter(|(key, _)| key.starts_with("REPLAYDESK_") && key.contains("__"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn seconds(text: &str) -> Duration {
    replaydesk::config::parse_duration(text).unwrap_or_else(|e| panic!("{e}"))
}

/// The port of a listen address like `0.0.0.0:8080`.
fn port_of(listen: &str) -> u16 {
    listen.rsplit(':').next().unwrap().parse().unwrap()
}

#[test]
fn every_yaml_and_json_file_in_deploy_parses() {
    let mut all = Vec::new();
    files(&repo().join("deploy"), &mut all);
    let (mut yamls, mut jsons) = (0, 0);
    for file in &all {
        let text = std::fs::read_to_string(file).unwrap();
        match file.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => {
                let docs = YamlLoader::load_from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                assert!(
                    !docs.is_empty() && docs.iter().all(|d| d.as_hash().is_some()),
                    "{}: every document is a mapping",
                    file.display()
                );
                yamls += 1;
            }
            Some("json") => {
                serde_json::from_str::<Value>(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
                jsons += 1;
            }
            _ => {}
        }
    }
    // kubernetes (5), compose, two Slack manifests; Zendesk (2), Discord, Grafana.
    assert!(yamls >= 8, "{yamls} YAML files");
    assert!(jsons >= 4, "{jsons} JSON files");
}

// ---- Kubernetes

fn kubernetes_objects() -> BTreeMap<String, Yaml> {
    let kustomization = yaml("deploy/kubernetes/kustomization.yaml").remove(0);
    assert_eq!(s(&kustomization["kind"]), "Kustomization");
    let listed: BTreeSet<String> = kustomization["resources"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|r| s(r).to_owned())
        .collect();
    let mut present = Vec::new();
    files(&repo().join("deploy/kubernetes"), &mut present);
    let present: BTreeSet<String> = present
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
        .collect();
    assert_eq!(
        listed, present,
        "kustomization.yaml lists every manifest in deploy/kubernetes"
    );
    let mut objects = BTreeMap::new();
    for file in &listed {
        for doc in yaml(&format!("deploy/kubernetes/{file}")) {
            let kind = s(&doc["kind"]).to_owned();
            assert!(doc["apiVersion"].as_str().is_some(), "{file}: apiVersion");
            assert!(doc["metadata"]["name"].as_str().is_some(), "{file}: name");
            assert!(
                objects.insert(kind.clone(), doc).is_none(),
                "one {kind} only"
            );
        }
    }
    objects
}

/// A probe's or a Service's port: a number, or the name of one of the container's ports.
fn resolve_port(port: &Yaml, ports: &[Yaml]) -> i64 {
    match port {
        Yaml::Integer(n) => *n,
        Yaml::String(name) => ports
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .unwrap_or_else(|| panic!("no container port named {name}"))["containerPort"]
            .as_i64()
            .unwrap(),
        other => panic!("not a port: {other:?}"),
    }
}

fn labels(map: &Yaml) -> BTreeMap<String, String> {
    map.as_hash()
        .unwrap()
        .iter()
        .map(|(k, v)| (s(k).to_owned(), s(v).to_owned()))
        .collect()
}

fn selects(selector: &Yaml, pod_labels: &BTreeMap<String, String>) -> bool {
    let selector = labels(selector);
    !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v))
}

/// Example values of the Secret `replaydesk-secrets` (the Deployment only references it). Empty means
/// "not set", which switches that adapter off; the store needs a PostgreSQL URL.
fn example_secret(key: &str) -> String {
    match key {
        "store-url" => "postgres://replaydesk:secret@postgres:5432/replaydesk".into(),
        _ => String::new(),
    }
}

#[test]
fn the_kubernetes_manifests_run_two_probed_non_root_replicas_behind_a_pdb() {
    let objects = kubernetes_objects();
    let kinds: Vec<&str> = objects.keys().map(String::as_str).collect();
    assert_eq!(
        kinds,
        ["ConfigMap", "Deployment", "PodDisruptionBudget", "Service"]
    );
    let deployment = &objects["Deployment"];
    let spec = &deployment["spec"];
    assert_eq!(spec["replicas"].as_i64(), Some(2));
    let pod = &spec["template"]["spec"];
    let pod_labels = labels(&spec["template"]["metadata"]["labels"]);
    assert!(selects(&spec["selector"]["matchLabels"], &pod_labels));

    // Non-root, read-only root file system, no capabilities.
    let pod_security = &pod["securityContext"];
    assert_eq!(pod_security["runAsNonRoot"].as_bool(), Some(true));
    assert!(pod_security["runAsUser"].as_i64().unwrap() > 0);
    let containers = pod["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let container = &containers[0];
    let security = &container["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(security["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(
        security["capabilities"]["drop"].as_vec().unwrap(),
        &vec![Yaml::String("ALL".into())]
    );
    for kind in ["requests", "limits"] {
        for resource in ["cpu", "memory"] {
            assert!(
                !container["resources"][kind][resource].is_badvalue(),
                "resources.{kind}.{resource}"
            );
        }
    }

    // The environment: plain values and Secret references (never a secret's value).
    let mut env = BTreeMap::new();
    for var in container["env"].as_vec().unwrap() {
        let name = s(&var["name"]).to_owned();
        let secret_like = ["KEY", "TOKEN", "SECRET", "STORE__URL"]
            .iter()
            .any(|word| name.contains(word));
        let value = if let Some(value) = var["value"].as_str() {
            assert!(!secret_like, "{name} must come from a Secret, not a value");
            value.to_owned()
        } else {
            let reference = &var["valueFrom"]["secretKeyRef"];
            assert_eq!(s(&reference["name"]), "replaydesk-secrets", "{name}");
            example_secret(s(&reference["key"]))
        };
        env.insert(name, value);
    }
    assert!(
        env.keys()
            .any(|k| k == "REPLAYDESK_FULLSTORY__API_KEY" || k == "REPLAYDESK_STORE__URL")
    );

    // Probes on the container's port: liveness /healthz, readiness /readyz.
    let ports = container["ports"].as_vec().unwrap();
    let listen_port = i64::from(port_of(&env["REPLAYDESK_SERVER__LISTEN"]));
    assert!(env["REPLAYDESK_SERVER__LISTEN"].starts_with("0.0.0.0:"));
    assert!(
        ports
            .iter()
            .any(|p| p["containerPort"].as_i64() == Some(listen_port)),
        "the container port is the one replaydesk listens on"
    );
    for (probe, route) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        let get = &container[probe]["httpGet"];
        assert_eq!(s(&get["path"]), route, "{probe}");
        assert_eq!(resolve_port(&get["port"], ports), listen_port, "{probe}");
    }

    // The ConfigMap's replaydesk.toml is mounted where REPLAYDESK_CONFIG points, and loads with the
    // Deployment's environment through the crate's loader.
    let config_map = &objects["ConfigMap"];
    let config_path = Path::new(&env["REPLAYDESK_CONFIG"]);
    let volume = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"].as_str() == config_map["metadata"]["name"].as_str())
        .expect("a volume of the ConfigMap");
    let mount = container["volumeMounts"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|m| m["name"] == volume["name"])
        .expect("the ConfigMap is mounted");
    assert_eq!(
        Path::new(s(&mount["mountPath"])),
        config_path.parent().unwrap()
    );
    let file_name = config_path.file_name().unwrap().to_str().unwrap();
    let toml = s(&config_map["data"][file_name]);
    let config = load_config(toml, &config_vars(&env)).unwrap();
    assert_eq!(config.server.listen, "0.0.0.0:8080");
    assert!(config.store.url.starts_with("postgres://"));
    assert_eq!(config.limits.backend, LimitsBackend::Redis);
    assert_eq!(i64::from(config.limits.expected_replicas), 2);
    // The pod gets longer to stop than replaydesk gives in-flight work.
    let grace = pod["terminationGracePeriodSeconds"].as_i64().unwrap();
    assert!(
        Duration::from_secs(grace as u64) > config.server.shutdown_grace.0,
        "terminationGracePeriodSeconds {grace} > server.shutdown_grace"
    );

    // The Service reaches the pods' port; the PDB keeps one of them.
    let service = &objects["Service"]["spec"];
    assert!(selects(&service["selector"], &pod_labels));
    for port in service["ports"].as_vec().unwrap() {
        assert_eq!(resolve_port(&port["targetPort"], ports), listen_port);
    }
    let pdb = &objects["PodDisruptionBudget"];
    assert_eq!(s(&pdb["apiVersion"]), "policy/v1");
    assert_eq!(pdb["spec"]["minAvailable"].as_i64(), Some(1));
    assert!(selects(
        &pdb["spec"]["selector"]["matchLabels"],
        &pod_labels
    ));
}

#[test]
fn a_misspelt_key_in_a_deployment_would_be_caught() {
    // The checks above load every variable through Config::load; make sure that refuses a typo even
    // when its value is empty (a Secret reference not filled in).
    let env = BTreeMap::from([("REPLAYDESK_FULLSTORY__API_KEE".to_owned(), String::new())]);
    let error = load_config("", &env).unwrap_err();
    assert!(error.contains("api_kee"), "{error}");
    let error = load_config(
        "[limits]\nbackend = \"redis\"\nredis = \"x\"\n",
        &BTreeMap::new(),
    )
    .unwrap_err();
    assert!(error.contains("redis"), "{error}");
}

// ---- Dockerfile and compose

/// The Dockerfile's instructions, continuation lines joined, comments dropped.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in read("deploy/Dockerfile").lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                let (instruction, rest) = current.split_once(' ').unwrap();
                out.push((instruction.to_uppercase(), rest.trim().to_owned()));
                current.clear();
            }
        }
    }
    out
}

fn dockerfile_env() -> BTreeMap<String, String> {
    dockerfile()
        .iter()
        .filter(|(i, _)| i == "ENV")
        .flat_map(|(_, rest)| {
            rest.split_whitespace()
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap();
                    (k.to_owned(), v.to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The HEALTHCHECK's command (exec form).
fn healthcheck_command() -> Vec<String> {
    let (_, rest) = dockerfile()
        .into_iter()
        .find(|(i, _)| i == "HEALTHCHECK")
        .expect("a HEALTHCHECK");
    let json = &rest[rest.find("CMD [").expect("exec form") + 4..];
    serde_json::from_str(json).unwrap()
}

#[test]
fn the_dockerfile_builds_in_stages_and_runs_non_root_with_a_health_check() {
    let instructions = dockerfile();
    let from: Vec<&str> = instructions
        .iter()
        .filter(|(i, _)| i == "FROM")
        .map(|(_, r)| r.as_str())
        .collect();
    assert_eq!(from.len(), 2, "{from:?}");
    assert!(from[0].starts_with("rust:") && from[0].ends_with(" AS builder"));
    assert!(from[1].starts_with("debian:") && from[1].contains("-slim"));
    let text = read("deploy/Dockerfile");
    // Dependencies are built from the manifests alone before the sources arrive.
    let manifests = text.find("COPY Cargo.toml Cargo.lock").unwrap();
    let sources = text.find("COPY src ").unwrap();
    let first_build = text.find("cargo build --release --locked").unwrap();
    assert!(manifests < first_build && first_build < sources);
    assert!(text.contains("ca-certificates"));
    let user = instructions
        .iter()
        .rfind(|(i, _)| i == "USER")
        .map(|(_, r)| r.clone())
        .expect("a USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric user");
    assert!(uid > 0, "not root");

    let env = dockerfile_env();
    let port = port_of(&env["REPLAYDESK_SERVER__LISTEN"]);
    assert!(env["REPLAYDESK_SERVER__LISTEN"].starts_with("0.0.0.0:"));
    assert!(instructions.contains(&("EXPOSE".into(), port.to_string())));
    let check = healthcheck_command().join(" ");
    assert!(
        check.contains(&format!("/dev/tcp/127.0.0.1/{port}")) && check.contains("GET /healthz"),
        "{check}"
    );
    assert!(instructions.contains(&("ENTRYPOINT".into(), "[\"replaydesk\"]".into())));
    assert!(instructions.contains(&("CMD".into(), "[\"serve\"]".into())));

    // The config file the image points at is the documented example, and loads with the image's ENV.
    let config_path = &env["REPLAYDESK_CONFIG"];
    assert!(instructions.contains(&("COPY".into(), format!("config.example.toml {config_path}"))));
    let config = load_config(&read("config.example.toml"), &config_vars(&env)).unwrap();
    assert_eq!(config.server.listen, "0.0.0.0:8080");
    assert!(
        config
            .store
            .url
            .starts_with("sqlite:///var/lib/replaydesk/")
    );

    // Everything the build copies from the context gets past .dockerignore.
    let ignore = read(".dockerignore");
    assert!(ignore.lines().any(|l| l.trim() == "*"), "an allow-list");
    for (_, rest) in instructions
        .iter()
        .filter(|(i, r)| i == "COPY" && !r.starts_with("--from"))
    {
        let parts: Vec<&str> = rest.split_whitespace().collect();
        for source in &parts[..parts.len() - 1] {
            assert!(repo().join(source).exists(), "{source} exists");
            let allowed = format!("!{}", source.trim_end_matches('/'));
            assert!(
                ignore
                    .lines()
                    .any(|l| l.trim().trim_end_matches('/') == allowed),
                ".dockerignore lets {source} through"
            );
        }
    }
}

/// `${NAME}`, `${NAME:?message}` and `${NAME:-default}` replaced as compose does, from `vars`.
fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').unwrap() + start;
        let inner = &rest[start + 2..end];
        let name = inner.split([':', '-', '?']).next().unwrap();
        let value = vars
            .get(name)
            .unwrap_or_else(|| panic!("${{{name}}} is not defined in deploy/.env.example"));
        out.push_str(value);
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn compose_runs_two_replicas_on_postgres_and_redis() {
    let compose = yaml("deploy/docker-compose.yml").remove(0);
    let services = compose["services"].as_hash().unwrap();
    let example = env_file("deploy/.env.example");
    let image_env = dockerfile_env();
    let mut replicas = 0;
    let mut names = BTreeSet::new();
    for (name, service) in services {
        let name = s(name);
        names.insert(name.to_owned());
        assert!(
            !service["healthcheck"]["test"].is_badvalue(),
            "{name} has a health check"
        );
        let image = service["image"].as_str().unwrap_or_default();
        if !image.starts_with("replaydesk") {
            continue;
        }
        replicas += 1;
        assert_eq!(
            s(&service["build"]["dockerfile"]),
            "deploy/Dockerfile",
            "{name}"
        );
        assert_eq!(s(&service["build"]["context"]), "..", "{name}");
        assert_eq!(
            s(&service["env_file"]),
            ".env",
            "{name}: secrets from deploy/.env"
        );
        for dependency in ["postgres", "redis"] {
            assert_eq!(
                s(&service["depends_on"][dependency]["condition"]),
                "service_healthy",
                "{name} waits for {dependency}"
            );
        }
        // The environment replaydesk sees: the image's ENV, then the env file, then `environment`.
        let mut env = image_env.clone();
        env.extend(example.clone());
        for (key, value) in service["environment"].as_hash().unwrap() {
            let value = match value {
                Yaml::String(text) => interpolate(text, &example),
                Yaml::Integer(n) => n.to_string(),
                other => panic!("{name}: {other:?}"),
            };
            env.insert(s(key).to_owned(), value);
        }
        let config = load_config(&read("config.example.toml"), &config_vars(&env))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(config.server.listen, "0.0.0.0:8080");
        assert!(config.store.url.starts_with("postgres://"), "{name}");
        assert!(config.store.url.contains("@postgres:5432/"), "{name}");
        assert_eq!(config.limits.backend, LimitsBackend::Redis);
        assert_eq!(
            config.limits.redis_url.as_deref(),
            Some("redis://redis:6379")
        );
        assert_eq!(config.limits.expected_replicas, 2);
        let check = service["healthcheck"]["test"]
            .as_vec()
            .unwrap()
            .iter()
            .map(|part| s(part).to_owned())
            .collect::<Vec<_>>();
        assert_eq!(check[0], "CMD");
        assert_eq!(
            check[1..],
            healthcheck_command()[..],
            "{name}: the image's check"
        );
        assert!(
            check[3].contains(&format!("/{}", port_of(&config.server.listen))),
            "{name}"
        );
        let stop = seconds(s(&service["stop_grace_period"]));
        assert!(
            stop > config.server.shutdown_grace.0,
            "{name}: stop_grace_period"
        );
    }
    assert_eq!(replicas, 2, "two replicas of replaydesk");
    assert!(
        names.contains("postgres") && names.contains("redis"),
        "{names:?}"
    );
    assert!(
        s(&services[&Yaml::String("postgres".into())]["image"]).starts_with("postgres:")
            && s(&services[&Yaml::String("redis".into())]["image"]).starts_with("redis:")
    );
}

// ---- systemd

#[test]
fn the_systemd_unit_is_hardened_and_stops_after_the_shutdown_grace() {
    let mut unit: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut section = String::new();
    for line in read("deploy/replaydesk.service").lines().map(str::trim) {
        if line.starts_with('[') {
            section = line.to_owned();
        } else if let Some((key, value)) = line.split_once('=')
            && !line.starts_with('#')
        {
            unit.entry(format!("{section}{key}"))
                .or_default()
                .push(value.to_owned());
        }
    }
    let one = |key: &str| -> &str {
        let values = unit.get(key).unwrap_or_else(|| panic!("{key} is set"));
        assert_eq!(values.len(), 1, "{key} once");
        &values[0]
    };
    assert!(one("[Service]ExecStart").ends_with("/replaydesk serve"));
    assert_eq!(one("[Service]DynamicUser"), "yes");
    assert_eq!(one("[Service]ProtectSystem"), "strict");
    assert_eq!(one("[Service]NoNewPrivileges"), "yes");
    assert_eq!(one("[Service]PrivateTmp"), "yes");
    assert_eq!(one("[Service]CapabilityBoundingSet"), "");
    assert_eq!(one("[Service]Restart"), "on-failure");
    assert_eq!(one("[Service]KillSignal"), "SIGTERM");
    assert!(one("[Service]EnvironmentFile").starts_with("/etc/replaydesk/"));
    assert_eq!(one("[Install]WantedBy"), "multi-user.target");
    let state = one("[Service]StateDirectory");

    let env: BTreeMap<String, String> = unit["[Service]Environment"]
        .iter()
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap();
            (k.to_owned(), v.to_owned())
        })
        .collect();
    assert_eq!(env["REPLAYDESK_CONFIG"], "/etc/replaydesk/replaydesk.toml");
    let config = load_config(&read("config.example.toml"), &config_vars(&env)).unwrap();
    // The SQLite file is in the state directory, the only place ProtectSystem=strict lets it write.
    assert!(
        config
            .store
            .url
            .starts_with(&format!("sqlite:///var/lib/{state}/")),
        "{}",
        config.store.url
    );
    assert!(
        seconds(one("[Service]TimeoutStopSec")) > config.server.shutdown_grace.0,
        "TimeoutStopSec above server.shutdown_grace"
    );
}

// ---- platform setup files: exactly what the binary prints

const URL: &str = "https://replaydesk.example.com";
/// Placeholders `discord register` needs to run against the loopback fake (nothing of them is in the body).
const DISCORD_APP: &str = "123456789012345678";

/// Runs the binary with only the given configuration (no file, a throwaway store) and returns its stdout.
async fn replaydesk(dir: &TempDir, env: &[(&str, &str)], args: &[&str]) -> String {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_replaydesk"))
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .env(
            "REPLAYDESK_STORE__URL",
            format!("sqlite://{}/cli.db", dir.path().display()),
        )
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "replaydesk {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap() + "\n"
}

/// The JSON documents of `zendesk setup`'s output (the `#` lines are its explanations).
fn json_documents(text: &str) -> Vec<Value> {
    let json: String = text
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    serde_json::Deserializer::from_str(&json)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect()
}

async fn platform_files() -> Vec<(&'static str, String)> {
    let dir = TempDir::new().unwrap();
    let slack = replaydesk(&dir, &[], &["slack", "manifest", "--url", URL]).await;
    let socket = replaydesk(
        &dir,
        &[],
        &["slack", "manifest", "--url", URL, "--socket-mode"],
    )
    .await;

    let zendesk = replaydesk(&dir, &[], &["zendesk", "setup", "--url", URL]).await;
    let documents = json_documents(&zendesk);
    let webhook = documents
        .iter()
        .find(|d| d.get("webhook").is_some())
        .expect("the webhook");
    let triggers: Vec<Value> = documents
        .iter()
        .filter(|d| d.get("trigger").is_some())
        .cloned()
        .collect();
    assert_eq!(triggers.len(), 2, "{zendesk}");
    // Each document is printed as the file holds it (the triggers one by one).
    for document in std::iter::once(webhook).chain(&triggers) {
        assert!(zendesk.contains(&pretty(document)), "{zendesk}");
    }

    // `discord register` sends the commands to Discord: the body it PUTs, caught by a loopback fake.
    let discord = MockServer::start().await;
    Mock::given(method("PUT"))
        .and(path(format!("/applications/{DISCORD_APP}/commands")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!([
            {"id": "1", "name": "replays", "type": 1},
            {"id": "2", "name": "Find replays", "type": 3}
        ])))
        .expect(1)
        .mount(&discord)
        .await;
    let api = discord.uri();
    replaydesk(
        &dir,
        &[
            ("REPLAYDESK_DISCORD__APPLICATION_ID", DISCORD_APP),
            ("REPLAYDESK_DISCORD__BOT_TOKEN", "placeholder-bot-token"),
            ("REPLAYDESK_DISCORD__API_URL", &api),
        ],
        &["discord", "register"],
    )
    .await;
    let requests = discord.received_requests().await.unwrap();
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    // The same as the library's own list under the default configuration.
    let library = serde_json::to_value(replaydesk::adapters::discord::cli::commands(
        &Config::default(),
    ))
    .unwrap();
    assert_eq!(body, library);

    vec![
        ("deploy/slack/manifest.yaml", slack),
        ("deploy/slack/manifest-socket-mode.yaml", socket),
        ("deploy/zendesk/webhook.json", pretty(webhook)),
        (
            "deploy/zendesk/triggers.json",
            pretty(&Value::Array(triggers)),
        ),
        ("deploy/discord/commands.json", pretty(&body)),
    ]
}

#[tokio::test]
async fn platform_files_are_exactly_what_the_binary_prints() {
    let regenerate = std::env::var_os("DEPLOY_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (file, expected) in platform_files().await {
        let target = repo().join(file);
        if regenerate {
            std::fs::write(&target, &expected).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&target).unwrap_or_default();
        if committed != expected {
            stale.push(file);
        }
    }
    assert!(
        stale.is_empty(),
        "{stale:?} differ from what the binary prints now: run deploy/regenerate.sh \
         (DEPLOY_REGENERATE=1 cargo test --test deploy platform_files) and commit the result"
    );
    // The Slack manifests point at the example host, or at nothing in Socket Mode.
    let http = yaml("deploy/slack/manifest.yaml").remove(0);
    assert_eq!(
        s(&http["settings"]["event_subscriptions"]["request_url"]),
        format!("{URL}/slack/events")
    );
    let socket = yaml("deploy/slack/manifest-socket-mode.yaml").remove(0);
    assert_eq!(
        socket["settings"]["socket_mode_enabled"].as_bool(),
        Some(true)
    );
    assert!(!read("deploy/slack/manifest-socket-mode.yaml").contains(URL));
}

// ---- Grafana: only metrics the server exposes

/// The metric names of a Prometheus/OpenMetrics text, each with the label names its samples carry.
fn exposed(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut names: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let end = line.find(['{', ' ']).unwrap();
        let labels = names.entry(line[..end].to_owned()).or_default();
        if line[end..].starts_with('{') {
            let inner = &line[end + 1..line.find('}').unwrap()];
            for pair in inner.split(',').filter(|p| !p.is_empty()) {
                labels.insert(pair.split('=').next().unwrap().to_owned());
            }
        }
    }
    names
}

/// Every query string of the dashboard (panel targets, template variables).
fn queries(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("expr" | "query" | "definition", Value::String(q)) => {
                        if q != "prometheus" {
                            out.push(q.clone());
                        }
                    }
                    _ => queries(value, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| queries(v, out)),
        _ => {}
    }
}

/// `replaydesk_…` names in a PromQL expression, with the label names matched in their `{…}` selector.
fn referenced(query: &str) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    let mut rest = query;
    while let Some(start) = rest.find("replaydesk_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = tail[..end].to_owned();
        let mut labels = Vec::new();
        if tail[end..].starts_with('{') {
            let close = tail[end..].find('}').unwrap() + end;
            for matcher in tail[end + 1..close].split(',') {
                let label = matcher
                    .split(['=', '!', '~'])
                    .next()
                    .unwrap()
                    .trim()
                    .to_owned();
                if !label.is_empty() {
                    labels.push(label);
                }
            }
        }
        out.push((name, labels));
        rest = &tail[end..];
    }
    out
}

/// The whole service on a loopback port, FullStory faked, with traffic that makes every family of
/// `/metrics` show a sample (labelled families appear only once something was counted in them).
async fn metrics_of_a_running_server() -> (
    String,
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
) {
    let fullstory = MockServer::start().await;
    // One 429 (Retry-After 0: a retry, a 429 counted), then sessions.
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&fullstory)
        .await;
    // A session of an hour ago: its digest spends an Activation (charted by the budget panel).
    let created = (chrono::Utc::now().timestamp() - 3600).to_string();
    Mock::given(path("/sessions/v2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sessions": [{"userId": "1", "sessionId": "2", "createdTime": created,
                          "fsUrl": "https://app.fullstory.com/ui/o-1/session/1:2"}]
        })))
        .mount(&fullstory)
        .await;
    Mock::given(path("/v2/sessions/1%3A2/events"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"events": []})))
        .mount(&fullstory)
        .await;
    let dir = TempDir::new().unwrap();
    let config = Config::from_toml(&format!(
        r#"
        [server]
        listen = "127.0.0.1:0"
        [store]
        url = "sqlite://{}/replaydesk.db"
        [fullstory]
        api_key = "na1.deploy-test-key"
        base_url = "{}"
        requests_per_second = 1    # so the second lookup waits for the limiter
        burst = 1
        retry_backoff = "20ms"
        timeout = "2s"
        activations_per_cycle = 1000
        [slack]
        signing_secret = "deploy-test-signing-secret"
        bot_token = "xoxb-deploy-test"
        "#,
        dir.path().display(),
        fullstory.uri()
    ))
    .unwrap();
    replaydesk::install_crypto_provider();
    let app = std::sync::Arc::new(App::build(config, Clock::system()).await.unwrap());
    let service = replaydesk::wiring::Service::builder(app.clone())
        .build()
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(service.run_until(listener, async move {
        let _ = stopped.await;
    }));

    // Upstream traffic: a 429 and its retry, a limiter wait, cache misses and a hit.
    for email in [
        "first@example.com",
        "second@example.com",
        "first@example.com",
    ] {
        let who = Identity::Email(CustomerEmail::parse(email).unwrap());
        app.lookup
            .run(&app.lookup_request(vec![who]))
            .await
            .unwrap();
    }
    // Inbound traffic: a Slack command with a bad signature (401).
    let http = reqwest::Client::new();
    let refused = http
        .post(format!("http://{address}/slack/commands"))
        .header(
            "x-slack-request-timestamp",
            chrono::Utc::now().timestamp().to_string(),
        )
        .header("x-slack-signature", format!("v0={}", "0".repeat(64)))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("command=%2Freplays&text=help")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let text = http
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    (text, address, stop)
}

#[tokio::test]
async fn the_grafana_dashboard_charts_only_metrics_the_server_exposes() {
    let (text, address, _stop) = metrics_of_a_running_server().await;
    let exposed = exposed(&text);
    let dashboard: Value = serde_json::from_str(&read("deploy/grafana/replaydesk.json")).unwrap();

    // The data source is a template variable, and every panel and query uses it.
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    assert!(variables.iter().any(|v| v["name"] == "datasource"
        && v["type"] == "datasource"
        && v["query"] == "prometheus"));
    let panels = dashboard["panels"].as_array().unwrap();
    for panel in panels.iter().filter(|p| p["type"] != "row") {
        assert_eq!(
            panel["datasource"]["uid"], "${datasource}",
            "{}",
            panel["title"]
        );
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(target["datasource"]["uid"], "${datasource}");
        }
    }

    let mut all = Vec::new();
    queries(&dashboard, &mut all);
    let mut charted = BTreeSet::new();
    for query in &all {
        let names = referenced(query);
        assert!(!names.is_empty(), "`{query}` queries no replaydesk metric");
        for (name, labels) in names {
            let known = exposed.get(&name).unwrap_or_else(|| {
                panic!(
                    "`{name}` (in `{query}`) is not exposed by GET /metrics; it has: {:?}",
                    exposed.keys().collect::<Vec<_>>()
                )
            });
            for label in labels {
                // instance and job are added by Prometheus when it scrapes.
                assert!(
                    label == "instance" || label == "job" || known.contains(&label),
                    "`{name}` has no label `{label}` (in `{query}`); it has {known:?}"
                );
            }
            charted.insert(name);
        }
    }
    // What the dashboard is for: inbound, upstream economy, the queue, outages.
    for family in [
        "replaydesk_upstream_breaker_state",
        "replaydesk_queue_waiting_jobs",
        "replaydesk_inbound_requests_total",
        "replaydesk_upstream_requests_total",
        "replaydesk_upstream_retries_total",
        "replaydesk_upstream_rate_limited_total",
        "replaydesk_upstream_limiter_waits_total",
        "replaydesk_cache_lookups_total",
        "replaydesk_queue_jobs",
        "replaydesk_queue_enqueue_to_done_seconds_bucket",
        "replaydesk_queue_dead_letters_total",
        "replaydesk_fullstory_activations_used",
        "replaydesk_fullstory_activations_budget",
    ] {
        assert!(charted.contains(family), "the dashboard charts {family}");
    }

    // The image's HEALTHCHECK, run for real against this server (its port swapped in): healthy on
    // /healthz, unhealthy on a route that is not 200.
    let command = healthcheck_command();
    let script = command[2].replace("/8080", &format!("/{}", address.port()));
    let run = |script: String| {
        tokio::process::Command::new(&command[0])
            .arg(&command[1])
            .arg(script)
            .status()
    };
    assert!(
        run(script.clone()).await.unwrap().success(),
        "the health check passes: {script}"
    );
    assert!(
        !run(script.replace("/healthz", "/no-such-route"))
            .await
            .unwrap()
            .success(),
        "and fails on a 404"
    );
}
