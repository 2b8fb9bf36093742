//! Runs every shell command the repository's Markdown files show (`README.md`,
//! `crates/*/README.md`, `examples/*/README.md`, `docs/**/*.md`; ```` ```sh ````, `bash` and
//! `shell` blocks), so that a README whose command breaks fails CI.
//!
//! The convention, for whoever writes a README:
//!
//! - Each command runs as written with `bash -c`, from the repository root, with
//!   `target/debug` (of `CARGO_TARGET_DIR`, if set) first on `PATH` (so `runpod` and `runpod-local` are the built binaries).
//!   Commands of one file run in order and share `export`s; a `cd` holds until the end of its
//!   block (each block starts at the root). A command must exit 0,
//!   or `N` when its trailing comment says `exit N`. When its trailing comment or the comment
//!   line after it shows a JSON answer with a `"status"`, its output must have that status.
//! - A server (a command matching [`RULES`] as `Server`: `--serve-api`, `runpod-local`, or one
//!   the README sends to the background with `&`) is started in the background and waited for
//!   until it accepts connections; it runs until the end of the file. Ports are examples: a
//!   server written with `--port N` (or started with `PORT=N`) runs on a free port
//!   instead, one written with `--port 0` on the one it picks, and that documented port (`N`, or
//!   the one in the output comment after it) is replaced by the real one in the file's later
//!   commands.
//! - Job ids are examples: `ID`, `JOB_ID` and an abbreviated id such as `e76d66e5-...` stand
//!   for the id of the last job a command of the file printed.
//! - `.cache/` means the test cache (`$RUNPOD_RS_CACHE`, which `scripts/test.sh` sets), and
//!   `/tmp/` a scratch folder of the run (empty at its start, removed at its end): only where a
//!   path starts in the README's own text ([`map_paths`]), so a checkout or a cache that lives
//!   under `/tmp` keeps its paths.
//! - A long command may run in a smoke form: [`RULES`] lists it as `Smoke` with the flags
//!   appended (the command as written is what runs, with fewer jobs or seconds).
//! - A command that cannot run in a test is listed in [`RULES`] as `Skip`, with the reason;
//!   commands that talk to the port of a skipped server are skipped with it. Anything not
//!   listed runs: a new README command either works as written or gets a rule here.
//! - Every command's cargo builds into the workspace's target dir, and `--release` builds at
//!   opt-level 0 (see [`build_env`]): a new worker crate reuses the test build's dependencies,
//!   and the benchmark's smoke run does not pay for an optimised build nobody reads.
//! - A command may take 25 min when it runs cargo or a script (builds), else 5 min. The
//!   commands must leave the repository's files as they found them (`git status` is compared).
//!
//! - A ```` ```python ```` block is one command, run whole by the Python of the test venv
//!   (`RUNPOD_TEST_LLM_PYTHON`: the OpenAI client, transformers), after the shell commands
//!   before it in its file (their servers running, ports substituted).
//!
//! Inline code in prose is not run, only the commands of shell and Python blocks.

use readme_commands::{blocks, markdown_files, Command};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How a command is run.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Started in the background, waited for, stopped at the end of the file.
    Server,
    /// Run with these arguments appended.
    Smoke(&'static str),
    /// Not run, for this reason.
    Skip(&'static str),
}

/// Which commands a rule applies to.
#[derive(Debug, Clone, Copy)]
enum Match {
    /// Commands containing this text.
    Contains(&'static str),
    /// Exactly this command.
    Is(&'static str),
}

/// The commands not run plainly as written; the first rule that matches applies.
const RULES: &[(Match, Action)] = &[
    (Match::Contains("./scripts/test.sh"), Action::Skip("it is the command that runs this test")),
    (
        Match::Contains("python handler.py"),
        Action::Skip(
            "handler.py is the reader's own worker; crates/local/tests/python_sdk.rs runs the official SDK's \
             worker with the variables of `runpod-local worker-env`",
        ),
    ),
    (
        Match::Contains("--features cuda"),
        Action::Skip("needs nvcc and a GPU; CI never builds the cuda feature (scripts/gpu-kit.sh pack does, for a GPU machine)"),
    ),
    (
        Match::Contains("docker "),
        Action::Skip(
            "an image build takes many minutes; examples/embeddings/tests/image.rs and \
             examples/support/tests/template_image.rs build and run the same Dockerfiles with podman",
        ),
    ),
    (Match::Contains("podman "), Action::Skip("as docker: the image tests run podman themselves")),
    (
        Match::Contains("/path/to/"),
        Action::Skip("a placeholder for the reader's own model; the test cache has only all-MiniLM-L6-v2"),
    ),
    (Match::Contains("--serve-api"), Action::Server),
    (Match::Contains("runpod-local load-balance"), Action::Server),
    (Match::Contains("cargo run -p runpod-local -- --port"), Action::Server),
    (
        Match::Is("cargo run --release -p runpod-bench"),
        Action::Smoke(
            "-- --jobs 200 --max-secs 0.5 --python-max-secs 1.5 --startup-runs 1 --warmup 2 \
             --durability-rounds 1 --durability-secs 0.5",
        ),
    ),
    (
        Match::Contains("-p runpod-bench -- --skip-python"),
        Action::Smoke(
            "--jobs 500 --max-secs 0.3 --startup-runs 1 --warmup 2 --durability-rounds 1 \
             --durability-secs 0.5",
        ),
    ),
];

/// Longest a command that runs cargo may take (a release build on 2 busy cores included).
const CARGO_LIMIT: Duration = Duration::from_secs(1500);
/// Longest any other command may take.
const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// How long `code` may run (or take to answer, for a server).
fn limit_for(code: &str) -> Duration {
    if code.contains("cargo ") || code.contains("./scripts/") {
        CARGO_LIMIT
    } else {
        COMMAND_LIMIT
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

impl Match {
    fn matches(self, code: &str) -> bool {
        match self {
            Match::Contains(s) => code.contains(s),
            Match::Is(s) => code == s,
        }
    }
}

/// The rule for `code`: the first of [`RULES`] that matches, else `Server` for a command the
/// README sends to the background (`... &`).
fn rule_for(code: &str) -> Option<Action> {
    RULES
        .iter()
        .find_map(|(m, action)| m.matches(code).then_some(*action))
        .or_else(|| in_background(code).then_some(Action::Server))
}

/// Whether a `Server` rule matches `code` (whatever rule comes first), or it ends in `&`.
fn is_server(code: &str) -> bool {
    RULES.iter().any(|(m, a)| matches!(a, Action::Server) && m.matches(code)) || in_background(code)
}

/// Whether `code` ends in a lone `&` (not `&&`).
fn in_background(code: &str) -> bool {
    let code = code.trim_end();
    code.ends_with('&') && !code.ends_with("&&")
}

/// The port a server is told to listen on: `--port N`, else a `PORT=N` variable it is started
/// with; with the text to replace to move it elsewhere.
fn written_port(code: &str) -> Option<(String, String)> {
    if let Some(p) = flag_value(code, "--port") {
        return Some((p.to_owned(), format!("--port {p}")));
    }
    let at = code.match_indices("PORT=").find(|(i, _)| *i == 0 || code[..*i].ends_with(' '))?.0;
    let digits: String = code[at + 5..].chars().take_while(|c| c.is_ascii_digit()).collect();
    (!digits.is_empty()).then(|| (digits.clone(), format!("PORT={digits}")))
}

/// A free port on 127.0.0.1 (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The number after `flag ` in `code`.
fn flag_value<'a>(code: &'a str, flag: &str) -> Option<&'a str> {
    let at = code.find(&format!("{flag} "))? + flag.len() + 1;
    code[at..].split_whitespace().next()
}

/// The first `127.0.0.1:PORT` or `localhost:PORT` in `text`.
fn first_port(text: &str) -> Option<String> {
    for host in ["127.0.0.1:", "localhost:"] {
        if let Some(at) = text.find(host) {
            let digits: String = text[at + host.len()..].chars().take_while(|c| c.is_ascii_digit()).collect();
            if !digits.is_empty() {
                return Some(digits);
            }
        }
    }
    None
}

/// Replaces `:{from}` by `:{to}` where the port ends there.
fn replace_port(text: &str, from: &str, to: &str) -> String {
    let needle = format!(":{from}");
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        out.push_str(&rest[..at]);
        if after.starts_with(|c: char| c.is_ascii_digit()) {
            out.push_str(&needle);
        } else {
            out.push(':');
            out.push_str(to);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Maps the README's path placeholders in one pass: `.cache/` to `cache` (the test cache,
/// when set) and `/tmp/` to `tmp` (the run's scratch folder: what a README makes there, a
/// copied template or a sourced file, starts absent in every run and is removed after it).
///
/// A placeholder counts only where a path starts in the README's text: at the start of the
/// command or after a blank, `=`, `<`, `>`, `(`, `@` or a quote. What it is replaced by is never
/// looked at again, so a cache or checkout that itself lives under `/tmp/` keeps its path.
fn map_paths(code: &str, cache: Option<&str>, tmp: &str) -> String {
    let starts_path = |prev: Option<char>| {
        prev.is_none_or(|c| c.is_whitespace() || matches!(c, '=' | '<' | '>' | '(' | '@' | '"' | '\''))
    };
    let mut out = String::with_capacity(code.len());
    let mut prev = None;
    let mut rest = code;
    while let Some(c) = rest.chars().next() {
        if starts_path(prev) {
            let mapped = [(".cache/", cache), ("/tmp/", Some(tmp))]
                .into_iter()
                .find_map(|(from, to)| Some((from, to?)).filter(|_| rest.starts_with(from)));
            if let Some((from, to)) = mapped {
                out.push_str(to.trim_end_matches('/'));
                out.push('/');
                rest = &rest[from.len()..];
                prev = Some('/');
                continue;
            }
        }
        out.push(c);
        prev = Some(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// Replaces the job-id placeholders (`ID`, `JOB_ID`, `e76d66e5-...`) by `id`.
fn replace_ids(text: &str, id: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let word_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.';
    while i < chars.len() {
        if i == 0 || !word_char(chars[i - 1]) {
            let word: String = chars[i..].iter().take_while(|c| word_char(**c)).collect();
            let abbreviated = word.len() == 12
                && word.ends_with("-...")
                && word[..8].chars().all(|c| c.is_ascii_hexdigit());
            if word == "ID" || word == "JOB_ID" || abbreviated {
                out.push_str(id);
                i += word.chars().count();
                continue;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

/// Sends `sig` to process group `pgid`.
fn signal_group(pgid: u32, sig: i32) {
    // SAFETY: kill(2) of a process group this test created; an empty group only yields ESRCH.
    unsafe { libc::kill(-(pgid as i32), sig) };
}

/// A server started by a command, leader of its own process group, output in `log`.
struct Server {
    child: std::process::Child,
    log: PathBuf,
    what: String,
}

impl Server {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn stop(mut self) {
        signal_group(self.child.id(), libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        signal_group(self.child.id(), libc::SIGKILL);
        let _ = self.child.wait();
    }
}

/// What running one file did.
#[derive(Default)]
struct Tally {
    run: usize,
    skipped: Vec<String>,
    failures: Vec<String>,
}

/// Runs the commands of one Markdown file.
struct FileRun<'a> {
    file: &'a Path,
    scratch: &'a Path,
    base_env: Vec<(String, String)>,
    exports: BTreeMap<String, String>,
    cwd: PathBuf,
    ports: Vec<(String, String)>,
    skipped_ports: Vec<(String, &'static str)>,
    last_id: Option<String>,
    servers: Vec<Server>,
    has_curl: bool,
    tally: Tally,
}

impl FileRun<'_> {
    fn at(&self, c: &Command) -> String {
        format!("{}:{}", self.file.display(), c.line)
    }

    /// The command with the file's substitutions applied: ports and job ids first, then the
    /// paths (see [`map_paths`]).
    fn substituted(&self, code: &str) -> String {
        let mut code = code.to_owned();
        for (from, to) in &self.ports {
            code = replace_port(&code, from, to);
        }
        if let Some(id) = &self.last_id {
            code = replace_ids(&code, id);
        }
        let cache = std::env::var("RUNPOD_RS_CACHE").ok();
        map_paths(&code, cache.as_deref(), &self.scratch.join("tmp").display().to_string())
    }

    fn bash(&self, code: &str) -> std::process::Command {
        let mut cmd = std::process::Command::new("bash");
        cmd.arg("-c").arg(code).current_dir(&self.cwd).env_clear();
        cmd.envs(self.base_env.iter().map(|(k, v)| (k, v)));
        cmd.envs(&self.exports);
        cmd.stdin(Stdio::null()).process_group(0);
        cmd
    }

    fn skip(&mut self, c: &Command, why: &str) {
        eprintln!("SKIPPED {}: {}  ({why})", self.at(c), c.code);
        self.tally.skipped.push(format!("{}: {}  ({why})", self.at(c), c.code));
    }

    fn fail(&mut self, c: &Command, why: String) {
        eprintln!("FAILED {}: {}\n{why}", self.at(c), c.code);
        self.tally.failures.push(format!("{}: {}\n{why}", self.at(c), c.code));
    }

    /// Runs one command; false when the file cannot go on.
    fn command(&mut self, c: &Command) -> bool {
        let port = first_port(&c.code);
        if let Some((port, why)) = self.skipped_ports.iter().find(|(p, _)| port.as_ref() == Some(p)) {
            let why = format!("talks to the server on :{port}, skipped: {why}");
            self.skip(c, &why);
            return true;
        }
        let action = rule_for(&c.code);
        if let Some(Action::Skip(why)) = action {
            if is_server(&c.code) {
                if let Some(port) = flag_value(&c.code, "--port") {
                    self.skipped_ports.push((port.to_owned(), why));
                }
            }
            self.skip(c, why);
            return true;
        }
        if !self.has_curl && c.code.starts_with("curl ") {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI: curl is needed (scripts/test.d/10-tools.sh installs it)"
            );
            self.skip(c, "no curl on this machine");
            return true;
        }
        let mut code = self.substituted(&c.code);
        if let Some(rest) = code.strip_prefix(&format!("{} ", readme_commands::PYTHON)) {
            // A Python block: run by the test venv's Python (the OpenAI client, transformers).
            match std::env::var("RUNPOD_TEST_LLM_PYTHON") {
                Ok(python) => code = format!("'{python}' {rest}"),
                Err(_) => {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "CI: RUNPOD_TEST_LLM_PYTHON is needed (scripts/test.d/50-llm-python.sh sets it)"
                    );
                    self.skip(
                        c,
                        "no RUNPOD_TEST_LLM_PYTHON (scripts/test.d/50-llm-python.sh makes its venv)",
                    );
                    return true;
                }
            }
        }
        if let Some(rest) = code.strip_prefix("export ") {
            for pair in rest.split_whitespace() {
                if let Some((k, v)) = pair.split_once('=') {
                    self.exports.insert(k.to_owned(), v.trim_matches(|q| q == '"' || q == '\'').to_owned());
                }
            }
            self.tally.run += 1;
            return true;
        }
        if let Some(dir) = code.strip_prefix("cd ") {
            self.cwd = self.cwd.join(dir.trim());
            self.tally.run += 1;
            return true;
        }
        match action {
            Some(Action::Server) => self.server(c, code),
            Some(Action::Smoke(extra)) => self.run(c, format!("{code} {extra}")),
            _ => self.run(c, code),
        }
    }

    fn run(&mut self, c: &Command, code: String) -> bool {
        let started = Instant::now();
        eprintln!("RUN {}: {code}", self.at(c));
        let mut child = match self.bash(&code).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn() {
            Ok(child) => child,
            Err(e) => {
                self.fail(c, format!("could not start bash: {e}"));
                return false;
            }
        };
        let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
        let out = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = out.read_to_string(&mut s);
            s
        });
        let err = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            s
        });
        let status = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if started.elapsed() > limit_for(&code) {
                signal_group(child.id(), libc::SIGKILL);
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // Anything the command left running in its group goes with it.
        signal_group(child.id(), libc::SIGKILL);
        let (stdout, stderr) = (out.join().unwrap(), err.join().unwrap());
        let tail =
            |s: &str| s.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect::<String>();
        let Some(status) = status else {
            self.fail(c, format!("still running after {:?}\nstderr: {}", limit_for(&code), tail(&stderr)));
            return false;
        };
        let code_seen = status.code().unwrap_or(-1);
        eprintln!("  exit {code_seen} after {:.1} s", started.elapsed().as_secs_f64());
        self.tally.run += 1;
        for line in stdout.lines() {
            if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(line.trim()) {
                if let Some(id) = o.get("id").and_then(|v| v.as_str()) {
                    self.last_id = Some(id.to_owned());
                }
            }
        }
        if code_seen != c.expected_exit() {
            let why = format!(
                "exit {code_seen}, the README says {}\nstdout: {}\nstderr: {}",
                c.expected_exit(),
                tail(&stdout),
                tail(&stderr)
            );
            self.fail(c, why);
            return false;
        }
        if let Some(status) = c.expected_status() {
            let compact: String = stdout.chars().filter(|ch| !ch.is_whitespace()).collect();
            if !compact.contains(&format!("\"status\":\"{status}\"")) {
                self.fail(c, format!("the README shows status {status}; stdout: {}", tail(&stdout)));
                return false;
            }
        }
        true
    }

    fn server(&mut self, c: &Command, mut code: String) -> bool {
        // Started in the background by this test, not by the shell (its output is watched).
        if in_background(&code) {
            code = code.trim_end().trim_end_matches('&').trim_end().to_owned();
        }
        let (documented, fixed) = match written_port(&code) {
            Some((p, text)) if p != "0" => {
                let real = free_port().to_string();
                code = code.replacen(&text, &text.replace(&p, &real), 1);
                (Some(p), Some(real))
            }
            _ => (c.output.iter().find_map(|l| first_port(l)), None),
        };
        let log = self.scratch.join(format!("server-{}-{}.log", self.servers.len(), c.line));
        let file = std::fs::File::create(&log).unwrap();
        eprintln!("SERVER {}: {code}", self.at(c));
        let child = match self.bash(&code).stdout(file.try_clone().unwrap()).stderr(file).spawn() {
            Ok(child) => child,
            Err(e) => {
                self.fail(c, format!("could not start bash: {e}"));
                return false;
            }
        };
        let mut server = Server { child, log, what: code.clone() };
        let started = Instant::now();
        let real = loop {
            let port = fixed.clone().or_else(|| first_port(&server.output()));
            if let Some(p) = &port {
                if std::net::TcpStream::connect(format!("127.0.0.1:{p}")).is_ok() {
                    break port;
                }
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                let why = format!("the server exited ({status}) before answering:\n{}", server.output());
                self.fail(c, why);
                return false;
            }
            if started.elapsed() > limit_for(&code) {
                let why = format!("no answer after {:?}:\n{}", limit_for(&code), server.output());
                server.stop();
                self.fail(c, why);
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        eprintln!(
            "  serving on :{} after {:.1} s",
            real.as_deref().unwrap_or("?"),
            started.elapsed().as_secs_f64()
        );
        if let (Some(doc), Some(real)) = (documented, real) {
            self.ports.retain(|(d, _)| *d != doc);
            self.ports.push((doc, real));
        }
        self.tally.run += 1;
        self.servers.push(server);
        true
    }

    fn finish(mut self) -> Tally {
        for s in self.servers.drain(..) {
            eprintln!("STOP {}", s.what);
            s.stop();
        }
        self.tally
    }
}

#[test]
fn every_readme_command_works_as_written() {
    let root = root();
    let scratch = tempfile_dir();
    std::fs::create_dir_all(scratch.join("tmp")).unwrap();
    // The binaries the READMEs call by name (the test build may not have built them), each
    // built alone, with the features `cargo run -p` gives it, so later commands reuse them.
    for package in ["runpod-client", "runpod-local"] {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bins"])
            .current_dir(&root)
            .status()
            .expect("cargo build");
        assert!(status.success(), "cargo build -p {package} --bins failed");
    }

    let target =
        std::env::var_os("CARGO_TARGET_DIR").map(|t| root.join(t)).unwrap_or_else(|| root.join("target"));
    let path = format!("{}:{}", target.join("debug").display(), std::env::var("PATH").unwrap_or_default());
    // The variables cargo sets for this test binary describe it, not the commands' packages.
    let for_this_test = |k: &str| {
        k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_EXE_")
            || matches!(
                k,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_MANIFEST_LINKS"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "RUST_TEST_THREADS"
            )
    };
    let base_env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| {
            !matches!(k.as_str(), "RUNPOD_API_KEY" | "RUNPOD_ENDPOINT_ID" | "RUNPOD_BASE_URL" | "PATH")
        })
        .filter(|(k, _)| !for_this_test(k))
        .chain([("PATH".to_owned(), path)])
        .chain(build_env(&target))
        .collect();
    let has_curl = std::process::Command::new("curl").arg("--version").output().is_ok();

    let before = git_status(&root);
    let mut total = Tally::default();
    let files = markdown_files(&root);
    for file in &files {
        let text = std::fs::read_to_string(root.join(file)).unwrap();
        let mut run = FileRun {
            file,
            scratch: &scratch,
            base_env: base_env.clone(),
            exports: BTreeMap::new(),
            cwd: root.clone(),
            ports: Vec::new(),
            skipped_ports: Vec::new(),
            last_id: None,
            servers: Vec::new(),
            has_curl,
            tally: Tally::default(),
        };
        'file: for block in blocks(&text) {
            // A block starts where the reader's terminal is: at the repository's root.
            run.cwd = root.clone();
            for c in &block.commands {
                if !run.command(c) {
                    break 'file;
                }
            }
        }
        let t = run.finish();
        total.run += t.run;
        total.skipped.extend(t.skipped);
        total.failures.extend(t.failures);
    }
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!(
        "MEASURED: {} files, {} commands run, {} skipped:\n  {}",
        files.len(),
        total.run,
        total.skipped.len(),
        total.skipped.join("\n  ")
    );
    assert!(total.failures.is_empty(), "README commands failed:\n\n{}", total.failures.join("\n\n"));
    let after = git_status(&root);
    assert_eq!(before, after, "README commands changed the repository's files (git status before, after)");
    assert!(total.run > 10, "only {} commands ran", total.run);
}

/// What the commands' cargo builds share: one target dir, the workspace's (a worker crate the
/// README creates builds into it too, so it reuses the dependencies the test build compiled:
/// 15 s instead of 7 min of a cold build, as the template's `[profile.dev]` matches the
/// workspace's), and `--release` at opt-level 0 (the test checks that a command works, not how
/// fast: the optimised build of runpod-bench alone took 755 s of a 32 min CI run).
fn build_env(target: &Path) -> [(String, String); 2] {
    [
        ("CARGO_TARGET_DIR".to_owned(), target.display().to_string()),
        ("CARGO_PROFILE_RELEASE_OPT_LEVEL".to_owned(), "0".to_owned()),
    ]
}

/// `git status --porcelain` of the repository (ignored files left out), or `None` without git.
fn git_status(root: &Path) -> Option<String> {
    let out =
        std::process::Command::new("git").args(["status", "--porcelain"]).current_dir(root).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// A fresh scratch directory for server logs.
fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("readme-commands-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn background_commands_and_their_ports() {
    let lb = "PORT=8001 LISTEN_HOST=127.0.0.1 cargo run -p embeddings -- --load-balancing &";
    assert!(in_background(lb) && is_server(lb));
    assert!(!in_background("make && make install"));
    assert_eq!(written_port(lb), Some(("8001".into(), "PORT=8001".into())));
    assert_eq!(written_port("PORT_HEALTH=9 x --port 8000 &"), Some(("8000".into(), "--port 8000".into())));
    assert_eq!(written_port("MY_PORT=5 x"), None);
    assert!(is_server("runpod-local load-balance --worker http://127.0.0.1:8001 --port 8000"));
}

#[test]
fn only_the_readmes_own_paths_are_mapped() {
    let (cache, tmp) = ("/tmp/tmp.X/repo/.cache", "/tmp/readme-commands-7/tmp");
    let map = |code: &str| map_paths(code, Some(cache), tmp);
    // The README's own `.cache/` and `/tmp/` paths, wherever a path starts.
    assert_eq!(
        map("MODEL=.cache/models/m.gguf cargo run -- --x '/tmp/a' > /tmp/b"),
        "MODEL=/tmp/tmp.X/repo/.cache/models/m.gguf cargo run -- --x '/tmp/readme-commands-7/tmp/a' \
         > /tmp/readme-commands-7/tmp/b"
    );
    assert_eq!(map(".cache/x"), "/tmp/tmp.X/repo/.cache/x");
    assert_eq!(map("/tmp/w"), "/tmp/readme-commands-7/tmp/w");
    assert_eq!(map(". /tmp/worker.env && x"), ". /tmp/readme-commands-7/tmp/worker.env && x");
    // A cache under /tmp is not mapped a second time (the bug: it became a scratch path).
    assert_eq!(map(" .cache/models/m"), " /tmp/tmp.X/repo/.cache/models/m");
    // Not where no path starts: inside a longer path or a URL.
    assert_eq!(map("cat a/tmp/b x.cache/y http://h/tmp/z"), "cat a/tmp/b x.cache/y http://h/tmp/z");
    // Without a test cache, `.cache/` stays relative to the repository root.
    assert_eq!(map_paths("ls .cache/m /tmp/", None, tmp), "ls .cache/m /tmp/readme-commands-7/tmp/");
}
