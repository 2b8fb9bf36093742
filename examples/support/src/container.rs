//! The repository's Dockerfiles built and run with podman, for the
//! image tests: the podman, the settings (`CONTAINERS_CONF`, `CONTAINERS_STORAGE_CONF`) and the
//! local base images that `scripts/test.d/50-containers.sh` provides.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// podman with the test setup of `scripts/test.d/50-containers.sh`.
#[derive(Debug, Clone)]
pub struct Podman {
    bin: PathBuf,
    build_image: Option<String>,
}

/// The workspace root (where the root `Dockerfile` is).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

/// `None` after a loud `SKIPPED:` line when a prerequisite is missing outside CI; a panic under CI.
pub fn require(what: &str, var: &str) -> Option<PathBuf> {
    if let Some(v) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(v));
    }
    let why = format!("{what} not available ({var} unset)");
    if std::env::var_os("CI").is_some() {
        panic!("{why}: CI is set, so scripts/test.d/50-containers.sh must provide it");
    }
    eprintln!("SKIPPED: {why} (run ./scripts/test.sh, which installs it)");
    None
}

/// Text of a finished command's stdout and stderr.
pub fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

impl Podman {
    /// From `RUNPOD_TEST_PODMAN` (and `RUNPOD_TEST_BUILD_IMAGE`); see [`require`] for `None`.
    pub fn from_env() -> Option<Podman> {
        let bin = require("podman", "RUNPOD_TEST_PODMAN")?;
        Some(Podman { bin, build_image: std::env::var("RUNPOD_TEST_BUILD_IMAGE").ok() })
    }

    /// A podman command with `args`.
    pub fn cmd<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = Command::new(&self.bin);
        c.args(args);
        c
    }

    /// Runs podman with `args` to the end; panics (with its output) unless it exits 0.
    pub fn ok<I, S>(&self, args: I) -> String
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut c = self.cmd(args);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{c:?} failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Builds `context`'s Dockerfile as `tag` from local images only, with build arguments and
    /// named build contexts; the build image is the one the setup made (`rust:X.Y-bookworm`).
    /// Prints and returns the build's wall time; panics with the build's output on failure.
    pub fn build(
        &self,
        tag: &str,
        context: &Path,
        args: &[(&str, &str)],
        contexts: &[(&str, &Path)],
    ) -> Duration {
        let mut c = self.cmd(["build", "--format", "docker", "--pull=never", "-t", tag]);
        if let Some(image) = &self.build_image {
            c.arg("--build-arg").arg(format!("BUILD_IMAGE={image}"));
        }
        for (k, v) in args {
            c.arg("--build-arg").arg(format!("{k}={v}"));
        }
        for (k, dir) in contexts {
            c.arg("--build-context").arg(format!("{k}={}", dir.display()));
        }
        c.arg(context);
        let started = Instant::now();
        let out = c.output().unwrap();
        let took = started.elapsed();
        assert!(out.status.success(), "{c:?} failed after {took:?}:\n{}", text(&out));
        eprintln!("built {tag} in {:.1} s", took.as_secs_f64());
        took
    }

    /// The image's size in bytes, as `podman images` reports it.
    pub fn image_size(&self, tag: &str) -> u64 {
        self.ok(["image", "inspect", "--format", "{{.Size}}", tag]).parse().unwrap()
    }

    /// Runs `image` detached with the host's network (to reach a local endpoint on 127.0.0.1)
    /// and `env`; the container is removed when the returned value is dropped.
    pub fn start(&self, image: &str, env: &[(String, String)], args: &[&str]) -> Container {
        let mut c = self.cmd(["run", "-d", "--network", "host"]);
        for (k, v) in env {
            c.arg("-e").arg(format!("{k}={v}"));
        }
        c.arg(image).args(args);
        let out = c.output().unwrap();
        assert!(out.status.success(), "{c:?} failed: {}", text(&out));
        Container { podman: self.clone(), id: String::from_utf8_lossy(&out.stdout).trim().to_owned() }
    }

    /// Runs `podman run --rm <args>` to the end (at most `limit`) and returns its output.
    pub fn run(&self, args: &[&str], limit: Duration) -> Output {
        let mut child = self
            .cmd(["run", "--rm"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while child.try_wait().unwrap().is_none() {
            if started.elapsed() > limit {
                let _ = child.kill();
                panic!("podman run {args:?} still running after {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.wait_with_output().unwrap()
    }
}

/// A running container; removed (forcibly) on drop.
#[derive(Debug)]
pub struct Container {
    podman: Podman,
    /// The container id.
    pub id: String,
}

impl Container {
    /// Runs `cmd` in the container and returns its stdout.
    pub fn exec(&self, cmd: &[&str]) -> String {
        let mut args = vec!["exec", self.id.as_str()];
        args.extend_from_slice(cmd);
        self.podman.ok(args)
    }

    /// Everything the container printed so far (stdout, then stderr).
    pub fn logs(&self) -> String {
        text(&self.podman.cmd(["logs", self.id.as_str()]).output().unwrap())
    }

    /// `podman stop` with a grace period (SIGTERM, then SIGKILL after `grace`): the exit code
    /// and how long the stop took.
    pub fn stop(&self, grace: Duration) -> (i32, Duration) {
        let started = Instant::now();
        self.podman.ok(["stop", "-t", &grace.as_secs().to_string(), self.id.as_str()]);
        let took = started.elapsed();
        let code = self.podman.ok(["inspect", "--format", "{{.State.ExitCode}}", self.id.as_str()]);
        (code.parse().unwrap(), took)
    }

    /// What every worker image must do, asserted: the worker runs as a non-root user and is
    /// PID 1 (so `docker stop`'s SIGTERM reaches it), and SIGTERM ends it with exit 0 within
    /// the 10 s that `docker stop` and `podman stop` wait by default before they kill (exit
    /// 137), logging that it drains. Call it on an idle worker. Stops the container.
    pub fn assert_non_root_pid1_and_clean_stop(&self) {
        let uid = self.exec(&["id", "-u"]);
        assert_ne!(uid, "0", "the worker runs as root");
        let pid1 = self.exec(&["cat", "/proc/1/cmdline"]);
        assert!(pid1.starts_with("/usr/local/bin/worker"), "PID 1 is {pid1:?}");
        // `docker stop`'s default, not a longer one: a worker that needs more is killed there.
        let grace = Duration::from_secs(10);
        let (code, took) = self.stop(grace);
        let logs = self.logs();
        eprintln!("podman stop -t 10: exit {code} after {:.2} s (uid {uid})", took.as_secs_f64());
        assert_eq!(code, 0, "exit code after SIGTERM (137: killed at the end of the grace); log:\n{logs}");
        assert!(took < grace, "stop took {took:?}: SIGTERM did not end the worker");
        assert!(logs.contains("SIGTERM received"), "{logs}");
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = self.podman.cmd(["rm", "-f", "-t", "0", self.id.as_str()]).output();
    }
}
