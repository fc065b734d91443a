//! `kithd` as a real process, for tests that kill it or signal it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A port free on loopback now (the OS picks it; the caller hands it to kithd).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `kithd` process.
pub struct KithdProcess {
    child: Child,
    /// Its data directory.
    pub dir: PathBuf,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl KithdProcess {
    /// Starts `kithd` on a free loopback port with its data in `dir`, with extra flags, and
    /// waits until `/health` answers.
    pub async fn start(dir: &Path, extra_args: &[&str]) -> KithdProcess {
        KithdProcess::start_binary(&crate::workspace_binary("kithd"), dir, extra_args).await
    }

    /// Like [`KithdProcess::start`], but runs the given `kithd` executable (e.g. a release
    /// build for benchmarks).
    pub async fn start_binary(binary: &Path, dir: &Path, extra_args: &[&str]) -> KithdProcess {
        KithdProcess::start_on(Some(binary), dir, free_port(), extra_args).await
    }

    /// Starts `kithd` (the given executable, or this workspace's build if `None`) listening
    /// on `127.0.0.1:<port>` with its data in `dir`, with extra flags, and waits until
    /// `/health` answers. For nodes that must come back on the same port (a cluster's peers
    /// know each other by port).
    pub async fn start_on(
        binary: Option<&Path>,
        dir: &Path,
        port: u16,
        extra_args: &[&str],
    ) -> KithdProcess {
        let built;
        let binary = match binary {
            Some(path) => path,
            None => {
                built = crate::workspace_binary("kithd");
                built.as_path()
            }
        };
        let child = Command::new(binary)
            .arg("--data-dir")
            .arg(dir)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .args(extra_args)
            .env("KITH_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("kithd starts");
        let url = format!("http://127.0.0.1:{port}");
        let mut process = KithdProcess {
            child,
            dir: dir.to_path_buf(),
            url,
        };
        process.wait_healthy().await;
        process
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            // A kithd that could not start (bad config, port taken) says why on stderr.
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("kithd at {} exited before answering: {status}", self.url);
            }
            if let Ok(r) = reqwest::get(format!("{}/health", self.url)).await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("kithd did not become healthy at {}", self.url);
    }

    /// The process id (e.g. to read `/proc/<pid>/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL (no chance to flush) and waits for it.
    pub fn kill_9(mut self) {
        self.child.kill().expect("kill -9 kithd");
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
        self.child.wait().expect("kithd exits")
    }
}

impl Drop for KithdProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
