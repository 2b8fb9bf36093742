//! The command line: `cargo runpod <COMMAND>`, in cargo's shape (`--manifest-path`, `-F`,
//! `--release`, `-q`).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// Start, run, develop and ship Runpod Serverless workers written in Rust.
#[derive(Debug, Parser)]
#[command(name = "cargo runpod", bin_name = "cargo runpod", version, propagate_version = true)]
#[command(after_help = "See 'cargo runpod help <command>' for more information on a specific command.")]
pub(crate) struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Create a new worker crate at PATH from the template
    New(NewArgs),
    /// Run one job through the worker and print its result (its `--test-input`)
    Run(RunArgs),
    /// Serve the worker on a local endpoint, rebuilding and restarting it on every change
    Dev(DevArgs),
    /// Build the worker's container image with docker (else podman)
    Build(BuildArgs),
}

/// `cargo runpod new`.
#[derive(Debug, Args)]
pub(crate) struct NewArgs {
    /// Folder to create (new or empty); the package is named after it unless --name says
    pub(crate) path: PathBuf,
    /// Set the package name [default: the folder's name]
    #[arg(long, value_name = "NAME")]
    pub(crate) name: Option<String>,
}

/// The options every command that builds the worker shares.
#[derive(Debug, Args)]
pub(crate) struct CrateArgs {
    /// Path to the worker's Cargo.toml [default: the one in this folder or above]
    #[arg(long, value_name = "PATH")]
    pub(crate) manifest_path: Option<PathBuf>,
    /// Space or comma separated list of features to activate
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub(crate) features: Vec<String>,
    /// Build in release mode, with optimizations
    #[arg(short = 'r', long)]
    pub(crate) release: bool,
    /// Do not print cargo log messages
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

/// `cargo runpod run`.
#[derive(Debug, Args)]
#[command(after_help = "Without --input or --input-file, the crate's test_input.json is the request. \
                        Exits with the worker's code: 1 when the job failed.")]
pub(crate) struct RunArgs {
    /// The job's input, as JSON (the request is {"input": INPUT})
    #[arg(long, value_name = "JSON", conflicts_with = "input_file")]
    pub(crate) input: Option<String>,
    /// A request file ({"input": ...}, as test_input.json)
    #[arg(long, value_name = "FILE")]
    pub(crate) input_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) krate: CrateArgs,
}

/// `cargo runpod dev`.
#[derive(Debug, Args)]
#[command(after_help = "The endpoint is http://HOST:PORT/v2/local (no API key) and its console \
                        http://HOST:PORT/. It stays up while the worker is rebuilt: queued jobs \
                        wait, and a failed build leaves the last good worker serving. \
                        Ctrl-C stops the worker (its running jobs finish) and the endpoint.")]
pub(crate) struct DevArgs {
    /// Port of the local endpoint (0 picks a free one)
    #[arg(long, default_value_t = 8000)]
    pub(crate) port: u16,
    /// Address of the local endpoint
    #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
    pub(crate) host: String,
    /// Keep the endpoint's jobs in this folder across runs of `cargo runpod dev`
    #[arg(long, value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) krate: CrateArgs,
}

/// `cargo runpod build`.
#[derive(Debug, Args)]
#[command(after_help = "The image is built from the crate's Dockerfile with the crate's folder as \
                        the build context.")]
pub(crate) struct BuildArgs {
    /// Build a CUDA image (nvidia/cuda build and runtime images; the crate's `cuda` feature if it has one)
    #[arg(long)]
    pub(crate) cuda: bool,
    /// Name and tag of the image [default: PACKAGE:VERSION, PACKAGE:VERSION-cuda with --cuda]
    #[arg(short = 't', long, value_name = "TAG")]
    pub(crate) tag: Option<String>,
    /// A build argument of the Dockerfile (MODEL_ID=owner/name, ...); may be repeated
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) build_arg: Vec<String>,
    /// The tool that builds the image [default: docker if installed, else podman]
    #[arg(long, value_name = "docker|podman")]
    pub(crate) engine: Option<String>,
    /// Path to the worker's Cargo.toml [default: the one in this folder or above]
    #[arg(long, value_name = "PATH")]
    pub(crate) manifest_path: Option<PathBuf>,
}
