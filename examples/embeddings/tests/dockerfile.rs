//! The root Dockerfile, read and checked (Docker cannot run here): its instructions parse, the
//! stages and build arguments the READMEs rely on exist, every `--from` names an earlier stage,
//! every `${VAR}` is declared, the final stage runs the worker as a non-root user, and every
//! example it can build has the `cuda` feature it enables.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One instruction: keyword (upper case), arguments (continuations joined), 1-based line.
#[derive(Debug, Clone)]
struct Instr {
    keyword: String,
    args: String,
    line: usize,
}

/// Parses Dockerfile text: comments and blank lines dropped, `\` continuations joined.
fn parse(text: &str) -> Result<Vec<Instr>, String> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if pending.is_none() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        if pending.is_some() && line.starts_with('#') {
            continue; // comment lines inside a continued instruction
        }
        let (start, mut acc) = pending.take().unwrap_or((i + 1, String::new()));
        let (body, continued) = match line.strip_suffix('\\') {
            Some(b) => (b, true),
            None => (line, false),
        };
        acc.push_str(body.trim_end());
        acc.push(' ');
        if continued {
            pending = Some((start, acc));
            continue;
        }
        let acc = acc.trim().to_owned();
        let (kw, args) = acc.split_once(char::is_whitespace).ok_or(format!("line {start}: no arguments"))?;
        out.push(Instr { keyword: kw.to_ascii_uppercase(), args: args.trim().to_owned(), line: start });
    }
    if let Some((start, _)) = pending {
        return Err(format!("line {start}: continuation runs past the end of the file"));
    }
    Ok(out)
}

/// `${NAME}`, `${NAME:-x}` and `$NAME` references in `s`.
fn vars(s: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            let braced = b[i + 1] == b'{';
            let start = if braced { i + 2 } else { i + 1 };
            let mut j = start;
            while j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'_') {
                j += 1;
            }
            if j > start && !b[start].is_ascii_digit() {
                out.insert(s[start..j].to_owned());
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    out
}

struct Stage {
    name: String,
    base: String,
    instrs: Vec<Instr>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn stages(instrs: &[Instr]) -> (Vec<Instr>, Vec<Stage>) {
    let mut global = Vec::new();
    let mut stages: Vec<Stage> = Vec::new();
    for i in instrs {
        if i.keyword == "FROM" {
            let parts: Vec<&str> = i.args.split_whitespace().filter(|p| !p.starts_with("--")).collect();
            let name = match parts.as_slice() {
                [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => name.to_string(),
                _ => stages.len().to_string(),
            };
            stages.push(Stage { name, base: parts[0].to_owned(), instrs: vec![] });
        } else if let Some(s) = stages.last_mut() {
            s.instrs.push(i.clone());
        } else {
            global.push(i.clone());
        }
    }
    (global, stages)
}

fn arg_names(instrs: &[Instr]) -> BTreeMap<String, Option<String>> {
    instrs
        .iter()
        .filter(|i| i.keyword == "ARG")
        .map(|i| match i.args.split_once('=') {
            Some((k, v)) => (k.trim().to_owned(), Some(v.trim().trim_matches('"').to_owned())),
            None => (i.args.trim().to_owned(), None),
        })
        .collect()
}

#[test]
fn dockerfile_has_its_stages_args_and_a_non_root_worker() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile at the workspace root");
    let instrs = parse(&text).unwrap();
    let known =
        ["FROM", "ARG", "ENV", "RUN", "COPY", "WORKDIR", "USER", "CMD", "LABEL", "ENTRYPOINT", "EXPOSE"];
    for i in &instrs {
        assert!(known.contains(&i.keyword.as_str()), "line {}: unknown instruction {}", i.line, i.keyword);
    }
    let (global, stages) = stages(&instrs);
    let names: Vec<&str> = stages.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["build", "model-fetch", "model", "runtime"]);

    // Global args feed the FROM lines: a CUDA devel image to build, a CUDA runtime image to run.
    let globals = arg_names(&global);
    let resolve = |base: &str| -> String {
        let mut s = base.to_owned();
        for _ in 0..4 {
            for (k, v) in &globals {
                if let Some(v) = v {
                    s = s.replace(&format!("${{{k}}}"), v);
                }
            }
        }
        s
    };
    for s in &stages {
        for v in vars(&s.base) {
            assert!(globals.contains_key(&v), "FROM of stage {} uses ${v}, not a global ARG", s.name);
        }
    }
    let build_base = resolve(&stages[0].base);
    let run_base = resolve(&stages[3].base);
    assert!(build_base.starts_with("nvidia/cuda:") && build_base.contains("-devel-"), "{build_base}");
    assert!(run_base.starts_with("nvidia/cuda:") && run_base.contains("-runtime-"), "{run_base}");
    assert_eq!(resolve(&stages[2].base), "scratch", "`model` is empty unless --build-context model=DIR");

    // Every variable a stage uses is an ARG or ENV of that stage (or the shell's own loop variable).
    for s in &stages {
        let mut declared: BTreeSet<String> = arg_names(&s.instrs).into_keys().collect();
        for i in s.instrs.iter().filter(|i| i.keyword == "ENV") {
            for part in i.args.split_whitespace() {
                if let Some((k, _)) = part.split_once('=') {
                    declared.insert(k.to_owned());
                }
            }
        }
        declared.extend(["PATH", "f"].map(String::from));
        for i in &s.instrs {
            for v in vars(&i.args) {
                assert!(declared.contains(&v), "line {}: ${v} is not declared in stage {}", i.line, s.name);
            }
        }
    }

    // The build arguments the READMEs use.
    let build_args = arg_names(&stages[0].instrs);
    assert_eq!(build_args["EXAMPLE"].as_deref(), Some("embeddings"));
    assert_eq!(build_args["FEATURES"].as_deref(), Some("cuda"));
    assert!(build_args.contains_key("CUDA_COMPUTE_CAP") && build_args.contains_key("RUST_VERSION"));
    assert!(arg_names(&stages[1].instrs).contains_key("MODEL_ID"));

    // Each `--from` names an earlier stage.
    for (n, s) in stages.iter().enumerate() {
        for i in &s.instrs {
            if let Some(from) = i.args.split_whitespace().find_map(|p| p.strip_prefix("--from=")) {
                let earlier: Vec<&str> = stages[..n].iter().map(|s| s.name.as_str()).collect();
                assert!(earlier.contains(&from), "line {}: --from={from} is not an earlier stage", i.line);
            }
        }
    }

    // The final stage: worker binary, weights folder, non-root user, exec-form CMD.
    let last = &stages[3];
    let user = last.instrs.iter().rfind(|i| i.keyword == "USER").expect("a USER in the final stage");
    assert!(!["root", "0", "0:0"].contains(&user.args.as_str()), "runs as {}", user.args);
    let cmd = last.instrs.iter().rfind(|i| i.keyword == "CMD").expect("a CMD");
    let cmd: Vec<String> = serde_json::from_str(&cmd.args).expect("CMD in exec (JSON) form");
    assert_eq!(cmd, ["/usr/local/bin/worker"]);
    let copies: Vec<&str> =
        last.instrs.iter().filter(|i| i.keyword == "COPY").map(|i| i.args.as_str()).collect();
    assert!(copies.iter().any(|c| c.contains("--from=build") && c.ends_with("/usr/local/bin/worker")));
    assert!(copies.iter().any(|c| c.contains("--from=model") && c.ends_with("/model/")));
    let envs: String = last.instrs.iter().filter(|i| i.keyword == "ENV").map(|i| i.args.as_str()).collect();
    assert!(envs.contains("MODEL_DIR=/model"), "{envs}");

    // The build runs cargo for the chosen example with the chosen features.
    let build_run: String = stages[0]
        .instrs
        .iter()
        .filter(|i| i.keyword == "RUN")
        .map(|i| i.args.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    assert!(build_run.contains("cargo build --release --locked -p \"${EXAMPLE}\" --features \"${FEATURES}\""));
}

#[test]
fn every_model_example_builds_in_the_image_with_a_cuda_feature() {
    let dir = root().join("examples");
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let manifest = path.join("Cargo.toml");
        if !manifest.is_file() || !path.join("src/main.rs").is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&manifest).unwrap();
        let name = package_name(&text, &manifest);
        if ["embeddings", "text-generation", "bulk-embeddings"].contains(&name.as_str()) {
            // `-p ${EXAMPLE}` builds target/release/${EXAMPLE}: package, binary and folder agree.
            assert_eq!(Some(name.as_str()), path.file_name().and_then(|n| n.to_str()));
            assert!(!text.contains("[[bin]]"), "{name}: one binary, named after the package");
            assert!(
                text.lines().any(|l| l.trim_start().starts_with("cuda = [")),
                "{name} has no `cuda` feature"
            );
            found += 1;
        }
    }
    assert_eq!(found, 3, "the three model examples");
    // The toolchain the image installs is at least the workspace's rust-version.
    let docker = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let rust = docker.lines().find_map(|l| l.trim().strip_prefix("ARG RUST_VERSION=")).unwrap();
    let ws = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let msrv = ws.lines().find_map(|l| l.trim().strip_prefix("rust-version = ")).unwrap().trim_matches('"');
    let v = |s: &str| s.split('.').map(|p| p.parse::<u32>().unwrap()).collect::<Vec<_>>();
    assert!(v(rust) >= v(msrv), "image Rust {rust} < workspace rust-version {msrv}");
}

fn package_name(text: &str, manifest: &Path) -> String {
    text.lines()
        .find_map(|l| l.trim().strip_prefix("name = ").map(|n| n.trim_matches('"').to_owned()))
        .unwrap_or_else(|| panic!("no package name in {}", manifest.display()))
}

#[test]
fn the_parser_joins_continuations_and_finds_variables() {
    let instrs = parse("# c\nFROM a AS b\nRUN x \\\n  # inner\n  && y $Z ${W:-1}\n").unwrap();
    assert_eq!(instrs.len(), 2);
    assert_eq!(instrs[1].args, "x && y $Z ${W:-1}");
    assert_eq!(vars(&instrs[1].args), ["W", "Z"].map(String::from).into());
    assert!(parse("RUN a \\\n").is_err());
}
