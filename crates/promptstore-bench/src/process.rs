//! Starting and stopping the servers under test, timing their first successful answer and
//! reading their memory from `/proc`.
//!
//! Every process started here is stopped by [`Running::stop`] or, on any early return, killed
//! by `Drop`, so a failed benchmark never leaves a server behind.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::http;

/// Which server to start.
#[derive(Debug, Clone)]
pub enum ServerKind {
    /// `promptstore serve --data-dir DIR` (default settings otherwise, as a user runs it).
    Promptstore { bin: PathBuf, data_dir: PathBuf },
    /// `bare_axum PORT BODY_BYTES`: the baseline.
    Bare { bin: PathBuf, body_bytes: usize },
}

impl ServerKind {
    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            ServerKind::Promptstore { .. } => "promptstore",
            ServerKind::Bare { .. } => "bare_axum",
        }
    }

    fn command(&self, port: u16) -> Command {
        match self {
            ServerKind::Promptstore { bin, data_dir } => {
                let mut c = Command::new(bin);
                c.arg("serve")
                    .arg("--data-dir")
                    .arg(data_dir)
                    .args(["--bind", "127.0.0.1", "--port"])
                    .arg(port.to_string());
                c
            }
            ServerKind::Bare { bin, body_bytes } => {
                let mut c = Command::new(bin);
                c.arg(port.to_string()).arg(body_bytes.to_string());
                c
            }
        }
    }
}

/// A free loopback port: bound, read and released (the server binds it right after).
pub fn free_port() -> anyhow::Result<u16> {
    let listener =
        TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("cannot find a free port")?;
    Ok(listener
        .local_addr()
        .context("cannot read the bound port")?
        .port())
}

/// Resident memory of a process, in KiB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the most that was ever resident.
    pub hwm_kib: u64,
}

/// Parse `VmRSS` and `VmHWM` out of a `/proc/<pid>/status` text.
pub fn parse_status(status: &str) -> anyhow::Result<Memory> {
    let field = |name: &str| -> anyhow::Result<u64> {
        let line = status
            .lines()
            .find(|l| l.starts_with(name))
            .with_context(|| format!("no {name} line in /proc status"))?;
        line[name.len()..]
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("unreadable {name} line: {line:?}"))
    };
    Ok(Memory {
        rss_kib: field("VmRSS:")?,
        hwm_kib: field("VmHWM:")?,
    })
}

/// A started server.
#[derive(Debug)]
pub struct Running {
    kind: &'static str,
    child: Child,
    pub addr: SocketAddr,
    /// Taken just before the process was spawned.
    pub spawned_at: Instant,
    log: PathBuf,
}

/// Spawn `kind` on a free port, its output going to `log`.
pub fn start(kind: &ServerKind, log: &Path) -> anyhow::Result<Running> {
    let port = free_port()?;
    let out =
        std::fs::File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone().context("cannot share the log file")?;
    let mut command = kind.command(port);
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    let spawned_at = Instant::now();
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {} ({:?})", kind.name(), command.get_program()))?;
    Ok(Running {
        kind: kind.name(),
        child,
        addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
        spawned_at,
        log: log.to_owned(),
    })
}

/// Statuses a starting server may answer before it is ready; anything else non-200 is an
/// error of the benchmark setup (a wrong key, a missing prompt) and ends the run.
fn transient(status: u16) -> bool {
    matches!(status, 502..=504)
}

impl Running {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Poll with `POST path` until the server answers 200; the time since spawn.
    /// Refused connections are retried every 200 µs for at most `deadline`.
    pub fn wait_first_success(
        &mut self,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        deadline: Duration,
    ) -> anyhow::Result<Duration> {
        let give_up = self.spawned_at + deadline;
        let mut last = String::from("no attempt");
        while Instant::now() < give_up {
            if let Some(exit) = self
                .child
                .try_wait()
                .context("cannot poll the server process")?
            {
                bail!(
                    "{} exited with {exit} before answering; its output is in {}",
                    self.kind,
                    self.log.display()
                );
            }
            match http::request(
                self.addr,
                "POST",
                path,
                headers,
                body,
                Duration::from_secs(5),
            ) {
                Ok(answer) if answer.status == 200 => return Ok(self.spawned_at.elapsed()),
                Ok(answer) if transient(answer.status) => {
                    last = format!("status {}", answer.status)
                }
                Ok(answer) => bail!(
                    "{} answered {} to POST {path}: {}",
                    self.kind,
                    answer.status,
                    String::from_utf8_lossy(&answer.body)
                ),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        bail!(
            "{} did not answer 200 within {deadline:?} (last: {last}); its output is in {}",
            self.kind,
            self.log.display()
        )
    }

    /// The server's memory right now.
    pub fn memory(&self) -> anyhow::Result<Memory> {
        let path = format!("/proc/{}/status", self.pid());
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
        parse_status(&text)
    }

    /// Stop with SIGTERM (graceful shutdown, as an operator stops it), killing it when it is
    /// still running 5 s later.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.pid().to_string();
        // `kill(1)` rather than libc: the workspace forbids unsafe code.
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if self
                .child
                .try_wait()
                .context("cannot poll the server process")?
                .is_some()
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        self.child.kill().context("cannot kill the server")?;
        self.child.wait().context("cannot reap the server")?;
        bail!("{} ignored SIGTERM for 5 s and was killed", self.kind)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_status_memory_lines_parse() {
        let status = "Name:\tpromptstore\nVmHWM:\t   51234 kB\nVmRSS:\t   40960 kB\nThreads:\t3\n";
        assert_eq!(
            parse_status(status).unwrap(),
            Memory {
                rss_kib: 40960,
                hwm_kib: 51234
            }
        );
        let err = parse_status("Name:\tx\nVmRSS:\t1 kB\n").unwrap_err();
        assert!(err.to_string().contains("VmHWM"), "{err}");
    }

    #[test]
    fn this_process_has_a_readable_memory() {
        let text = std::fs::read_to_string("/proc/self/status").unwrap();
        let m = parse_status(&text).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
    }

    #[test]
    fn a_process_that_exits_at_once_is_reported_with_its_log() {
        let tmp = tempfile::tempdir().unwrap();
        let kind = ServerKind::Bare {
            bin: PathBuf::from("/bin/false"),
            body_bytes: 1,
        };
        let mut running = start(&kind, &tmp.path().join("log")).unwrap();
        let err = running
            .wait_first_success("/", &[], b"", Duration::from_secs(5))
            .unwrap_err()
            .to_string();
        assert!(err.contains("exited") && err.contains("log"), "{err}");
    }
}
