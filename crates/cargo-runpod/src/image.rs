//! `cargo runpod build`: the worker's container image, from the crate's Dockerfile (the one
//! every runpod-rs worker uses), with docker, else podman.

use crate::cli::BuildArgs;
use crate::project::Project;
use crate::shell;
use anyhow::{bail, Context, Result};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The build and runtime images of `--cuda` (one distribution: the runtime needs the build's glibc).
const CUDA_BUILD_IMAGE: &str = "nvidia/cuda:12.4.1-devel-ubuntu22.04";
const CUDA_RUNTIME_IMAGE: &str = "nvidia/cuda:12.4.1-runtime-ubuntu22.04";

/// Builds the image and prints its size and how to push it.
pub(crate) fn run(args: &BuildArgs) -> Result<ExitCode> {
    let project = Project::locate(args.manifest_path.as_deref())?;
    if !project.dir.join("Dockerfile").is_file() {
        bail!("no Dockerfile in {} (`cargo runpod new` writes one)", project.dir.display());
    }
    let engine = match &args.engine {
        Some(e) if e == "docker" || e == "podman" => e.clone(),
        Some(e) => bail!("--engine is docker or podman, not `{e}`"),
        None => ["docker", "podman"]
            .into_iter()
            .find(|e| installed(e))
            .context("neither docker nor podman is installed: install one to build images")?
            .to_owned(),
    };
    let tag = match &args.tag {
        Some(t) => t.clone(),
        None if args.cuda => format!("{}:{}-cuda", project.name, project.version),
        None => format!("{}:{}", project.name, project.version),
    };
    let build_args = build_args(args, &project);

    let mut cmd = Command::new(&engine);
    cmd.arg("build").current_dir(&project.dir);
    if engine == "podman" {
        // The Dockerfile's SHELL (pipefail) is kept only in docker's image format.
        cmd.args(["--format", "docker"]);
    }
    cmd.args(["-t", &tag]);
    for arg in &build_args {
        cmd.args(["--build-arg", arg]);
    }
    cmd.arg(".");
    shell::status("Building", format!("image `{tag}` with {engine} ({})", render(&cmd)));
    let started = Instant::now();
    let status = cmd.status().with_context(|| format!("could not run {engine}"))?;
    if !status.success() {
        shell::error(format!("{engine} build failed ({status})"));
        return Ok(ExitCode::FAILURE);
    }
    let out = Command::new(&engine).args(["image", "inspect", "--format", "{{.Size}}", &tag]).output()?;
    let size = String::from_utf8_lossy(&out.stdout).trim().parse::<u64>().ok();
    let size = size.map_or_else(|| "size unknown".to_owned(), |b| format!("{:.1} MB", b as f64 / 1e6));
    shell::status("Finished", format!("image `{tag}` ({size}) in {:.0} s", started.elapsed().as_secs_f64()));
    let (name, version) = tag.rsplit_once(':').filter(|(_, v)| !v.contains('/')).unwrap_or((&tag, "latest"));
    if name.contains('/') {
        shell::note("Push", format!("{engine} push {tag}"));
    } else {
        let remote = format!("docker.io/YOU/{name}:{version}");
        shell::note("Push", format!("{engine} tag {tag} {remote} && {engine} push {remote}"));
    }
    Ok(ExitCode::SUCCESS)
}

/// The Dockerfile's build arguments: `--cuda`'s images and feature, then `--build-arg`s.
fn build_args(args: &BuildArgs, project: &Project) -> Vec<String> {
    let mut out = Vec::new();
    if args.cuda {
        out.push(format!("BUILD_IMAGE={CUDA_BUILD_IMAGE}"));
        out.push(format!("RUNTIME_IMAGE={CUDA_RUNTIME_IMAGE}"));
        if project.features.iter().any(|f| f == "cuda") {
            out.push("FEATURES=cuda".to_owned());
        } else {
            shell::warn(format!(
                "package `{}` has no `cuda` feature: the image is built on CUDA images, with the crate's default features",
                project.name
            ));
        }
    }
    out.extend(args.build_arg.iter().cloned());
    out
}

fn installed(engine: &str) -> bool {
    Command::new(engine).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// The command as a shell line, for the reader.
fn render(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|a| a.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}
