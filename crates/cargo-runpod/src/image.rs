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
    shell::note("Push", push_line(&engine, &tag));
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

/// How to push `tag`: as it is when it names a registry, else under `docker.io/YOU/`.
fn push_line(engine: &str, tag: &str) -> String {
    let (name, version) = match tag.rsplit_once(':') {
        Some((name, version)) if !version.contains('/') => (name, version),
        _ => (tag, "latest"),
    };
    if name.contains('/') {
        format!("{engine} push {tag}")
    } else {
        let remote = format!("docker.io/YOU/{name}:{version}");
        format!("{engine} tag {tag} {remote} && {engine} push {remote}")
    }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn project(features: &[&str]) -> Project {
        Project {
            manifest: PathBuf::from("/w/Cargo.toml"),
            dir: PathBuf::from("/w"),
            name: "w".into(),
            version: "0.1.0".into(),
            bin: "w".into(),
            features: features.iter().map(|f| f.to_string()).collect(),
        }
    }

    fn args(cuda: bool, build_arg: &[&str]) -> BuildArgs {
        BuildArgs {
            cuda,
            tag: None,
            build_arg: build_arg.iter().map(|a| a.to_string()).collect(),
            engine: None,
            manifest_path: None,
        }
    }

    #[test]
    fn cuda_picks_the_cuda_images_and_the_feature_when_the_crate_has_it() {
        assert_eq!(build_args(&args(false, &["MODEL_ID=a/b"]), &project(&[])), ["MODEL_ID=a/b"]);
        let with = build_args(&args(true, &[]), &project(&["cuda"]));
        assert_eq!(
            with,
            [
                format!("BUILD_IMAGE={CUDA_BUILD_IMAGE}"),
                format!("RUNTIME_IMAGE={CUDA_RUNTIME_IMAGE}"),
                "FEATURES=cuda".into()
            ]
        );
        let without = build_args(&args(true, &[]), &project(&["default"]));
        assert_eq!(without.len(), 2, "{without:?}");
    }

    #[test]
    fn the_push_line_names_a_registry_when_the_tag_has_none() {
        assert_eq!(
            push_line("docker", "w:0.1.0"),
            "docker tag w:0.1.0 docker.io/YOU/w:0.1.0 && docker push docker.io/YOU/w:0.1.0"
        );
        assert_eq!(
            push_line("podman", "w"),
            "podman tag w docker.io/YOU/w:latest && podman push docker.io/YOU/w:latest"
        );
        assert_eq!(push_line("docker", "ghcr.io/me/w:1"), "docker push ghcr.io/me/w:1");
        assert_eq!(push_line("docker", "localhost:5000/w"), "docker push localhost:5000/w");
    }
}
