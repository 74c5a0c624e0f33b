//! The crate's top-level modules (`src/<name>.rs` or `src/<name>/`) form a graph without cycles:
//! a module may use the ones below it, never the other way round, so the core (`outbound`,
//! `fullstory`, `lookup`, `store`, `queue`, …) can be read, tested and changed without the adapters,
//! the CLI or the demo. This test reads every `src/**/*.rs` file's code (comments and doc links
//! left out: a doc link is not a dependency), collects its `crate::<module>` paths (also inside
//! `use crate::{a, b::c}` groups), builds the graph of top-level modules and fails on any cycle,
//! naming the modules in it and a file:line for each edge. `lib.rs` and `main.rs` are the root and
//! the binary: they may use everything. Test code (`#[cfg(test)]` items and the files of
//! `#[cfg(test)] mod x;`) is left out too: a unit test may look across layers (render's property test
//! renders with every adapter), and it is not part of what the layers build on.
//!
//! The graph (`a → b`: `a` uses `b`), issue 13 item 4. Before: 10 pairs imported each other
//! (`adapters↔app`, `adapters↔cli`, `adapters↔jobs`, `adapters↔privacy`, `app↔jobs`, `app↔privacy`,
//! `cli↔demo`, `cli↔queue`, `jobs↔privacy`, `metrics↔outbound`), in two cycles: {config, metrics,
//! outbound, telemetry} and {adapters, app, cli, demo, jobs, privacy, queue, render, server}. After,
//! lowest first, every arrow pointing down and no exception (item 2 moved the composition root out of
//! `app` into `wiring`, and the audit trail below the core that holds it):
//!
//! ```text
//! clock, config, console, identity, metrics, signing      leaves (use nothing of the crate)
//! source_limits → config
//! store      → identity
//! telemetry  → config identity
//! outbound   → config metrics telemetry
//! privacy    → clock config identity signing store      (the audit trail, tombstones, receipts)
//! fullstory  → config identity metrics outbound
//! queue      → clock config metrics outbound store telemetry
//! lookup     → clock fullstory identity privacy
//! app        → clock config fullstory identity lookup metrics outbound privacy queue source_limits
//!              store                                        (the core: knows no platform, no job kind)
//! answer     → app fullstory identity lookup outbound privacy queue
//! server     → app config telemetry
//! render     → answer fullstory identity lookup privacy
//! escalate   → answer app config fullstory identity lookup outbound privacy queue render store
//!              (issue 25: the trackers, the escalation job; knows no platform)
//! erasure    → answer app config escalate fullstory identity outbound privacy queue signing store
//! adapters   → answer app … erasure … privacy queue render signing source_limits store
//! wiring     → adapters answer app clock config erasure queue server   (the composition root)
//! demo       → adapters … server wiring
//! cli        → everything it runs (adapters app demo erasure queue store wiring …)
//! ```
//!
//! Issue 23 moved each concern to one home: every metric family into `metrics` (a leaf: the queue's
//! and the upstreams' families with the inbound ones), what is kept about customers into `privacy`
//! (the audit trail, tombstones, receipts; was `audit`, `tombstone` and `answer::receipt`), the
//! erasure job into `erasure` (was `privacy::erase`), and the `jobs` command into `cli` (the queue no
//! longer imports the console).

#![allow(clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Imports that still point up a layer, left out before looking for cycles: each must still exist
/// (so the list only shrinks) and says why it is here. Keep it as short as possible.
const ALLOWED_UPWARD: &[(&str, &str, &str)] = &[];

/// An edge `from → to` and where it was seen (`path:line`).
type Graph = BTreeMap<String, BTreeMap<String, String>>;

#[test]
fn no_two_top_level_modules_depend_on_each_other() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = module_graph(&src);
    for (from, tos) in &graph {
        println!(
            "{from} → {}",
            tos.keys().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    let mut report = String::new();
    let mut pruned = graph.clone();
    for (from, to, why) in ALLOWED_UPWARD {
        let removed = pruned.get_mut(*from).and_then(|tos| tos.remove(*to));
        if removed.is_none() {
            report.push_str(&format!(
                "{from} → {to} is allowed ({why}) but no longer imported: remove it from ALLOWED_UPWARD\n"
            ));
        }
    }
    let cycles = strongly_connected(&pruned);
    for cycle in &cycles {
        report.push_str(&format!("cycle between {}:\n", cycle.join(", ")));
        for from in cycle {
            for (to, at) in &pruned[from] {
                if cycle.contains(to) {
                    report.push_str(&format!("  {from} → {to} ({at})\n"));
                }
            }
        }
    }
    assert!(report.is_empty(), "{report}");
}

#[test]
fn the_scanner_sees_grouped_and_inline_paths_but_not_comments() {
    let code = "use crate::{\n    a::X,\n    b::{Y, Z},\n};\n/// [`crate::c`]\nfn f() { crate::d::g(); } // crate::e\nconst S: &str = \"crate::f\";\n#[cfg(test)]\nmod tests {\n    use crate::g;\n    fn h() { if true { crate::i(); } }\n}\n#[cfg(test)]\nmod every;\nfn j() { crate::k::l(); }\n";
    let found: BTreeSet<(String, usize)> = crate_paths(code).into_iter().collect();
    let names: BTreeSet<&str> = found.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, BTreeSet::from(["a", "b", "d", "k"]));
    assert_eq!(
        without_test_code(&code_only(code)).1,
        vec!["every".to_owned()]
    );
    let k_line = found.iter().find(|(n, _)| n == "k").map(|(_, l)| *l);
    assert_eq!(k_line, Some(15), "line numbers survive the blanking");
}

fn module_graph(src: &Path) -> Graph {
    let tops: BTreeSet<String> = std::fs::read_dir(src)
        .expect("src/ is readable")
        .filter_map(|e| {
            let path = e.ok()?.path();
            let name = path.file_stem()?.to_str()?.to_owned();
            (path.is_dir() || path.extension().is_some_and(|x| x == "rs")).then_some(name)
        })
        .filter(|n| n != "lib" && n != "main")
        .collect();
    let mut graph: Graph = tops.iter().map(|t| (t.clone(), BTreeMap::new())).collect();
    let files = rust_files(src);
    // The files of `#[cfg(test)] mod x;` (and all below them) are test code.
    let mut test_only: Vec<PathBuf> = Vec::new();
    for file in &files {
        let code = std::fs::read_to_string(file).expect("a readable source file");
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        let dir = if matches!(name, "mod.rs" | "lib.rs" | "main.rs") {
            file.parent().expect("a folder").to_path_buf()
        } else {
            file.with_extension("")
        };
        for module in without_test_code(&code_only(&code)).1 {
            test_only.push(dir.join(format!("{module}.rs")));
            test_only.push(dir.join(module));
        }
    }
    for file in files {
        if test_only.iter().any(|t| file.starts_with(t)) {
            continue;
        }
        let rel = file.strip_prefix(src).expect("below src/");
        let first = rel.components().next().expect("a path below src/");
        let from = Path::new(first.as_os_str())
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 name")
            .to_owned();
        if !tops.contains(&from) {
            continue;
        }
        let code = std::fs::read_to_string(&file).expect("a readable source file");
        for (to, line) in crate_paths(&code) {
            if to != from && tops.contains(&to) {
                graph
                    .get_mut(&from)
                    .expect("every top-level module is a node")
                    .entry(to)
                    .or_insert_with(|| format!("src/{}:{line}", rel.display()));
            }
        }
    }
    graph
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).expect("a readable folder") {
        let path = entry.expect("a readable entry").path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|x| x == "rs") {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// The code of `source` with comments and string/char literals blanked (newlines kept, so line
/// numbers stay true).
fn code_only(source: &str) -> String {
    let chars: Vec<char> = source.chars().collect();
    let mut out = String::with_capacity(source.len());
    let mut i = 0;
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (next == Some('"') || next == Some('#'))
            && !chars
                .get(i.wrapping_sub(1))
                .is_some_and(|p| p.is_alphanumeric() || *p == '_')
        {
            // A raw string r"…" or r#"…"#.
            let mut j = i + 1;
            let mut hashes = 0;
            while chars.get(j) == Some(&'#') {
                hashes += 1;
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            j += 1;
            let closing: String = std::iter::once('"')
                .chain(std::iter::repeat_n('#', hashes))
                .collect();
            while j < chars.len() && !chars[j..].iter().collect::<String>().starts_with(&closing) {
                out.push(blank(chars[j]));
                j += 1;
            }
            i = j + closing.len();
        } else if c == '"' {
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                if chars[i] == '\\' {
                    i += 1;
                }
                if let Some(&c) = chars.get(i) {
                    out.push(blank(c));
                }
                i += 1;
            }
            i += 1;
        } else if c == '\'' && (next == Some('\\') || chars.get(i + 2) == Some(&'\'')) {
            // A char literal ('x', '\n', '\''); a lifetime ('a) has no closing quote.
            i += 1;
            if chars.get(i) == Some(&'\\') {
                i += 1;
            }
            i += 1;
            while i < chars.len() && chars[i] != '\'' {
                i += 1;
            }
            i += 1;
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// `code` (from [`code_only`]) with every `#[cfg(test)]` item blanked (newlines kept), and the names
/// of the modules declared test-only as files (`#[cfg(test)] mod x;`).
fn without_test_code(code: &str) -> (String, Vec<String>) {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(code.len());
    let mut files = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let item = &rest[at..];
        let brace = item.find('{');
        let semi = item.find(';');
        let end = match (brace, semi) {
            (Some(b), Some(s)) if s < b => {
                let declared = item[MARK.len()..s].trim();
                if let Some(name) = declared
                    .strip_prefix("pub(crate) mod ")
                    .or_else(|| declared.strip_prefix("pub mod "))
                    .or_else(|| declared.strip_prefix("mod "))
                {
                    files.push(name.trim().to_owned());
                }
                s + 1
            }
            (Some(b), _) => {
                let mut depth = 0;
                let mut end = item.len();
                for (k, c) in item[b..].char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = b + k + 1;
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                end
            }
            (None, Some(s)) => s + 1,
            (None, None) => item.len(),
        };
        out.extend(
            item[..end]
                .chars()
                .map(|c| if c == '\n' { '\n' } else { ' ' }),
        );
        rest = &item[end..];
    }
    out.push_str(rest);
    (out, files)
}

/// Every `crate::<name>` in the code of `source` (grouped `crate::{a, b::c}` too, test code left
/// out), with its line.
fn crate_paths(source: &str) -> Vec<(String, usize)> {
    let code = without_test_code(&code_only(source)).0;
    let mut found = Vec::new();
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    for (at, _) in code.match_indices("crate::") {
        if code[..at]
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
        {
            continue;
        }
        let line = code[..at].matches('\n').count() + 1;
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut start = true;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => start = true,
                    c if start && (c.is_alphanumeric() || c == '_') => {
                        found.push((ident(&group[k..]), line));
                        start = false;
                    }
                    _ => {}
                }
            }
        } else {
            found.push((ident(rest), line));
        }
    }
    found
}

/// The strongly connected components of more than one module (Tarjan), each sorted.
fn strongly_connected(graph: &Graph) -> Vec<Vec<String>> {
    struct State<'g> {
        graph: &'g Graph,
        index: BTreeMap<&'g str, usize>,
        low: BTreeMap<&'g str, usize>,
        stack: Vec<&'g str>,
        next: usize,
        components: Vec<Vec<String>>,
    }
    fn visit<'g>(s: &mut State<'g>, v: &'g str) {
        s.index.insert(v, s.next);
        s.low.insert(v, s.next);
        s.next += 1;
        s.stack.push(v);
        for w in s.graph[v].keys() {
            let w = w.as_str();
            if !s.index.contains_key(w) {
                visit(s, w);
                let low = s.low[v].min(s.low[w]);
                s.low.insert(v, low);
            } else if s.stack.contains(&w) {
                let low = s.low[v].min(s.index[w]);
                s.low.insert(v, low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut component = Vec::new();
            while let Some(w) = s.stack.pop() {
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                s.components.push(component);
            }
        }
    }
    let mut state = State {
        graph,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        next: 0,
        components: Vec::new(),
    };
    for v in graph.keys() {
        if !state.index.contains_key(v.as_str()) {
            visit(&mut state, v);
        }
    }
    state.components
}
