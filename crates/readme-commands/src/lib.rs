//! The shell commands the repository's Markdown files show, found so that a test can run them.
//!
//! [`markdown_files`] lists `README.md`, `crates/*/README.md`, `examples/*/README.md` and
//! `docs/**/*.md`; [`blocks`] finds their ```` ```sh ```` (`bash`, `shell`) blocks; each
//! [`Command`] in a block is one line of code (lines ending in `\` joined), with its trailing
//! `# comment` and the comment lines right after it (the output the README shows).
//! `tests/readme_commands.rs` runs them; its module doc says how.
//!
//! ```
//! let md = "Text\n\n```sh\ncargo run -p echo -- --test-input '{\"a\": 1}'   # prints it\n# {\"status\":\"COMPLETED\"}\nrunpod status ID  # exit 3\n```\n";
//! let blocks = readme_commands::blocks(md);
//! assert_eq!(blocks.len(), 1);
//! let [run, status] = &blocks[0].commands[..] else { panic!() };
//! assert_eq!(run.code, "cargo run -p echo -- --test-input '{\"a\": 1}'");
//! assert_eq!(run.output, vec!["{\"status\":\"COMPLETED\"}"]);
//! assert_eq!((run.expected_exit(), status.expected_exit()), (0, 3));
//! ```

use std::path::{Path, PathBuf};

/// A fenced shell block of a Markdown file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// 1-based line of the opening fence.
    pub line: usize,
    /// The commands, in order.
    pub commands: Vec<Command>,
}

/// One command of a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// 1-based line where it starts.
    pub line: usize,
    /// The code, continuation lines joined, trailing comment removed.
    pub code: String,
    /// The comment after the code on its last line, without `#`.
    pub comment: Option<String>,
    /// The comment lines right after it, without `# ` (the output the README shows).
    pub output: Vec<String>,
}

impl Command {
    /// The exit status the README gives it: `N` when its trailing comment says `exit N`, else 0.
    pub fn expected_exit(&self) -> i32 {
        let Some(c) = &self.comment else { return 0 };
        let mut words = c.split(|ch: char| !ch.is_ascii_alphanumeric());
        while let Some(w) = words.next() {
            if w == "exit" {
                if let Some(n) = words.next().and_then(|n| n.parse().ok()) {
                    return n;
                }
            }
        }
        0
    }

    /// The `status` the README shows for its answer: that of a JSON object in its trailing
    /// comment or in the first output line.
    pub fn expected_status(&self) -> Option<String> {
        let candidates = self.comment.iter().chain(self.output.first());
        for text in candidates {
            let text = text.trim();
            if let Some(at) = text.find("\"status\":\"") {
                let rest = &text[at + 10..];
                if let Some(end) = rest.find('"') {
                    return Some(rest[..end].to_owned());
                }
            }
        }
        None
    }
}

/// The Markdown files whose commands are run, relative to `root`, sorted.
pub fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if root.join("README.md").is_file() {
        files.push(PathBuf::from("README.md"));
    }
    for dir in ["crates", "examples"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else { continue };
        let mut found: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .map(|e| Path::new(dir).join(e.file_name()).join("README.md"))
            .filter(|p| root.join(p).is_file())
            .collect();
        found.sort();
        files.extend(found);
    }
    let mut docs = Vec::new();
    collect_md(root, Path::new("docs"), &mut docs);
    docs.sort();
    files.extend(docs);
    files
}

fn collect_md(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(rel)) else { return };
    for e in entries.filter_map(|e| e.ok()) {
        let rel = rel.join(e.file_name());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            collect_md(root, &rel, out);
        } else if rel.extension().is_some_and(|x| x == "md") {
            out.push(rel);
        }
    }
}

/// The shell blocks of a Markdown text: fences opened with ```` ``` ```` or `~~~` and the info
/// string `sh`, `bash` or `shell`; a `python` (`py`) block is one command that runs it with
/// [`PYTHON`].
pub fn blocks(markdown: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut lines = markdown.lines().enumerate();
    while let Some((i, line)) = lines.next() {
        let trimmed = line.trim_start();
        let Some(fence) = ["```", "~~~"].into_iter().find(|f| trimmed.starts_with(f)) else { continue };
        let info = trimmed.trim_start_matches(fence.chars().next().unwrap()).trim();
        let lang = info.split(|c: char| c.is_whitespace() || c == ',').next().unwrap_or("");
        let mut body = Vec::new();
        for (j, l) in lines.by_ref() {
            if l.trim_start().starts_with(fence) {
                break;
            }
            body.push((j + 1, l));
        }
        if matches!(lang, "sh" | "bash" | "shell") {
            out.push(Block { line: i + 1, commands: commands(&body) });
        } else if matches!(lang, "python" | "py") {
            out.push(Block { line: i + 1, commands: vec![python_command(&body)] });
        }
    }
    out
}

/// A Python block as one command: the whole block fed to `python3` on stdin (the test runs it
/// with the Python of its test venv).
fn python_command(lines: &[(usize, &str)]) -> Command {
    let line = lines.first().map_or(0, |(n, _)| *n);
    let body: Vec<&str> = lines.iter().map(|(_, l)| *l).collect();
    let code = format!("{PYTHON} - <<'PYTHON_BLOCK'\n{}\nPYTHON_BLOCK", body.join("\n"));
    Command { line, code, comment: None, output: Vec::new() }
}

/// The interpreter named by a Python block's command ([`blocks`]).
pub const PYTHON: &str = "python3";

/// The commands of a block's lines (1-based line number, text).
fn commands(lines: &[(usize, &str)]) -> Vec<Command> {
    let mut out: Vec<Command> = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for &(n, raw) in lines {
        let line = raw.trim();
        if pending.is_none() {
            if let Some(c) = line.strip_prefix('#') {
                if let Some(last) = out.last_mut() {
                    last.output.push(c.strip_prefix(' ').unwrap_or(c).to_owned());
                }
                continue;
            }
            if line.is_empty() {
                continue;
            }
        }
        let (start, mut code) = pending.take().unwrap_or((n, String::new()));
        if let Some(cont) = line.strip_suffix('\\') {
            code.push_str(cont.trim_end());
            code.push(' ');
            pending = Some((start, code));
            continue;
        }
        let (body, comment) = split_comment(line);
        code.push_str(body);
        out.push(Command { line: start, code: code.trim().to_owned(), comment, output: Vec::new() });
    }
    if let Some((start, code)) = pending {
        out.push(Command { line: start, code: code.trim().to_owned(), comment: None, output: Vec::new() });
    }
    out
}

/// Splits `line` at a `#` that starts a comment: outside quotes, at the start or after a blank.
pub fn split_comment(line: &str) -> (&str, Option<String>) {
    let (mut single, mut double, mut prev_blank) = (false, false, true);
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_blank => {
                return (line[..i].trim_end(), Some(line[i + 1..].trim().to_owned()));
            }
            _ => {}
        }
        prev_blank = c.is_whitespace();
    }
    (line.trim_end(), None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_block_is_one_command() {
        let b = blocks("```python\nimport sys\nprint('a')  # b\n```\n");
        assert_eq!(b.len(), 1);
        assert_eq!(b[0].commands.len(), 1);
        let c = &b[0].commands[0];
        assert_eq!((c.line, c.expected_exit()), (2, 0));
        assert_eq!(c.code, "python3 - <<'PYTHON_BLOCK'\nimport sys\nprint('a')  # b\nPYTHON_BLOCK");
    }

    #[test]
    fn comments_outside_quotes_only() {
        assert_eq!(split_comment("echo '# not' # yes"), ("echo '# not'", Some("yes".into())));
        assert_eq!(split_comment("curl http://x/#frag"), ("curl http://x/#frag", None));
        assert_eq!(split_comment("a \"b # c\""), ("a \"b # c\"", None));
        assert_eq!(split_comment("# all"), ("", Some("all".into())));
    }

    #[test]
    fn blocks_commands_and_outputs() {
        let md = "# Title\n\n```rust\nfn main() {}\n```\n\n```sh\nexport A=1   # set\ncurl -s x \\\n  -d '{}'\n# {\"id\":\"j\",\"status\":\"IN_QUEUE\"}\n# more\n\nrunpod stream ID; runpod health\n```\n\n```json\n{}\n```\n~~~bash\nls\n~~~\n";
        let b = blocks(md);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].line, 7);
        let c = &b[0].commands;
        assert_eq!(c.len(), 3);
        assert_eq!((c[0].code.as_str(), c[0].comment.as_deref()), ("export A=1", Some("set")));
        assert_eq!((c[1].line, c[1].code.as_str()), (9, "curl -s x -d '{}'"));
        assert_eq!(c[1].output, vec!["{\"id\":\"j\",\"status\":\"IN_QUEUE\"}", "more"]);
        assert_eq!(c[1].expected_status().as_deref(), Some("IN_QUEUE"));
        assert_eq!(c[2].code, "runpod stream ID; runpod health");
        assert_eq!(b[1].commands[0].code, "ls");
    }

    #[test]
    fn expected_exit_comes_from_the_trailing_comment() {
        let cmd = |comment: Option<&str>| Command {
            line: 1,
            code: "x".into(),
            comment: comment.map(Into::into),
            output: vec!["(exit 1 if it failed)".into()],
        };
        assert_eq!(cmd(None).expected_exit(), 0);
        assert_eq!(cmd(Some("no worker: prints the status, exit 5")).expected_exit(), 5);
        assert_eq!(cmd(Some("exit 3 (CANCELLED)")).expected_exit(), 3);
        assert_eq!(cmd(Some("about 70 s")).expected_exit(), 0);
    }

    #[test]
    fn finds_the_repository_readmes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let files = markdown_files(&root);
        assert_eq!(files[0], PathBuf::from("README.md"));
        assert!(files.contains(&PathBuf::from("crates/bench/README.md")), "{files:?}");
        assert!(files.iter().all(|f| root.join(f).is_file()));
    }
}
