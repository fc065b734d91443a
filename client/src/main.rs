//! `kith`: the command-line tool for people using a Kith node.
//!
//! Thin on purpose: argument parsing and printing live in `cli/`, and everything that talks
//! to a node or touches key files is the `kith_client` library.

mod cli;

use std::process::ExitCode;

use clap::Parser as _;

fn main() -> ExitCode {
    let args = cli::args::Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: could not start: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => cli::report::print(&error),
    }
}
