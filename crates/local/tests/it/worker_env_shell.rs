//! `runpod-local worker-env --format shell`: a file a shell can source without expanding the
//! `$ID` and `$RUNPOD_POD_ID` placeholders, in both ways the README shows.

use crate::common;

use common::BIN;
use std::process::Command;

fn sh(script: &str) -> String {
    let out = Command::new("sh").args(["-c", script]).env("RUNPOD_LOCAL", BIN).output().unwrap();
    assert!(out.status.success(), "{script}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn the_shell_format_survives_sourcing() {
    let dir = std::env::temp_dir().join(format!("worker-env-shell-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("worker.env");
    // A key with a quote and a dollar sign, to show the quoting holds.
    let script = format!(
        r#""$RUNPOD_LOCAL" worker-env --url http://127.0.0.1:8000 --worker-id w1 --api-key 'it'"'"'s $HOME' --format shell > {f}
. {f}
printf '%s\n' "$RUNPOD_WEBHOOK_GET_JOB" "$RUNPOD_WEBHOOK_POST_OUTPUT" "$RUNPOD_AI_API_KEY"
sh -c 'printf "%s\n" "$RUNPOD_POD_ID"'"#,
        f = file.display()
    );
    let lines: Vec<String> = sh(&script).lines().map(str::to_owned).collect();
    assert_eq!(lines[0], "http://127.0.0.1:8000/v2/local/job-take/$ID?gpu=local");
    assert_eq!(lines[1], "http://127.0.0.1:8000/v2/local/job-done/$RUNPOD_POD_ID/$ID?gpu=local");
    assert_eq!(lines[2], "it's $HOME");
    assert_eq!(lines[3], "w1", "exported: a child process sees it");

    // The `set -a; . file` form with the plain format expands `$ID` (the reason for --format shell).
    let plain = format!(
        r#""$RUNPOD_LOCAL" worker-env --url http://127.0.0.1:8000 > {f}
set -a; . {f}; set +a
printf '%s\n' "$RUNPOD_WEBHOOK_GET_JOB""#,
        f = file.display()
    );
    assert_eq!(sh(&plain).trim(), "http://127.0.0.1:8000/v2/local/job-take/?gpu=local");

    // And `env $(...)` with the plain format keeps it (no shell parses the values).
    let env_form = r#"env $("$RUNPOD_LOCAL" worker-env --url http://127.0.0.1:8000) sh -c 'printf "%s\n" "$RUNPOD_WEBHOOK_GET_JOB"'"#;
    assert_eq!(sh(env_form).trim(), "http://127.0.0.1:8000/v2/local/job-take/$ID?gpu=local");
    std::fs::remove_dir_all(&dir).unwrap();
}
