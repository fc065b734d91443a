//! The one shared harness for Kith's integration tests: real nodes on `127.0.0.1:0` with
//! temporary data directories (in-process, or as `kithd` processes), clusters of `kithd`
//! processes linked through cuttable proxies (for network partitions), a TLS-terminating
//! proxy (for links over `wss://`), raw WebSocket clients for speaking bad frames on
//! purpose, and small builders for signed events.
//!
//! Every test file uses this module; none starts a node its own way.
#![allow(unreachable_pub)]

pub mod catchup;
pub mod cluster;
pub mod events;
pub mod fed;
pub mod kith_cli;
pub mod link;
pub mod node;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod tls_proxy;

pub use cluster::Cluster;
pub use events::{post, post_at, seeded_key, TestGroup};
pub use node::TestNode;
pub use process::KithdProcess;
pub use proxy::Proxy;
pub use raw::RawClient;
pub use tls_proxy::TlsProxy;

/// Path of a binary built from this workspace (`kithd` or `kith`), building it if needed.
pub fn workspace_binary(name: &str) -> std::path::PathBuf {
    // Test executables live in target/<profile>/deps; binaries one level up.
    let exe = std::env::current_exe().expect("the test executable has a path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("test executables live in target/<profile>/deps");
    let path = dir.join(name);
    if !path.exists() {
        let package = if name == "kithd" {
            "kith-server"
        } else {
            "kith-client"
        };
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", name])
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building {name} failed");
    }
    path
}
