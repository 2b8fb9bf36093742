//! `cargo runpod`: start a Runpod Serverless worker in Rust, run one job through it, develop it
//! with live reload against a local endpoint, and build its container image.
//!
//! Cargo runs `cargo-runpod runpod ARGS...` for `cargo runpod ARGS...`; `cargo-runpod ARGS...`
//! works too.

mod cli;
mod compile;
mod dev;
mod embedded;
mod image;
mod new;
mod project;
mod run;
mod shell;
mod signal;
mod watch;
mod worker;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "runpod") {
        args.remove(1);
    }
    let cli = cli::Cli::parse_from(args);
    let result = match cli.command {
        cli::Command::New(a) => new::run(&a.path, a.name.as_deref()).map(|()| ExitCode::SUCCESS),
        cli::Command::Run(a) => run::run(&a),
        cli::Command::Build(a) => image::run(&a),
        cli::Command::Dev(a) => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(dev::run(a))),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            shell::error(format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}
