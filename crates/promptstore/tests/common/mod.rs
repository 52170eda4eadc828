//! The shared harness of the binary's end-to-end tests: a real `promptstore serve` on
//! port 0 in a temporary directory, and helpers to run CLI commands against it.

// Test helpers fail loudly by design; each test binary uses a different subset of them.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_promptstore");

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub url: String,
    pub admin_key: String,
    _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        let server = Server::start_in(tempfile::tempdir().unwrap(), None);
        assert!(
            server.admin_key.starts_with("ps_"),
            "the first start printed an admin key"
        );
        server
    }

    /// Starts a server on `dir`. A restart on an existing data directory prints no admin
    /// key, so the caller passes the one it kept from the first start.
    pub fn start_in(dir: tempfile::TempDir, admin_key: Option<&str>) -> Server {
        let mut child = Command::new(BIN)
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(dir.path())
            .env("PROMPTSTORE_LOG", "warn")
            .env_remove("PROMPTSTORE_PORT")
            .env_remove("PROMPTSTORE_BIND")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (lines_tx, lines_rx) = mpsc::channel();
        // Keep draining stdout for the server's whole life so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = lines_tx.send(line);
            }
        });
        let mut server = Server {
            child,
            url: String::new(),
            admin_key: admin_key.unwrap_or_default().to_string(),
            _dir: dir,
        };
        while server.url.is_empty() {
            let line = lines_rx
                .recv_timeout(Duration::from_secs(60))
                .expect("the server printed its URL in time");
            if let Some(key) = line.strip_prefix("admin key (shown once, store it now): ") {
                server.admin_key = key.trim().to_string();
            }
            if let Some(url) = line.strip_prefix("promptstore listening on ") {
                server.url = url.trim().to_string();
            }
        }
        server
    }

    /// Kills the server with SIGKILL — no shutdown, no flush — and hands back its data
    /// directory so a new server can be started on it.
    pub fn kill_hard(mut self) -> tempfile::TempDir {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self._dir, dir)
    }

    /// Runs the CLI against this server with the admin key.
    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with_key(&self.admin_key, args)
    }

    pub fn run_with_key(&self, key: &str, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args)
            .env("PROMPTSTORE_URL", &self.url)
            .env("PROMPTSTORE_API_KEY", key)
            .output()
            .unwrap()
    }

    /// Runs and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args);
        assert!(
            output.status.success(),
            "`promptstore {}` failed: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let out = self.ok(&with_json);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("`{}` printed no JSON ({e}): {out}", args.join(" ")))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
