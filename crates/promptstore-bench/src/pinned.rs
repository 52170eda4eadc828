//! A `promptstore serve` started for the analytics benchmarks: pinned to one core with
//! `taskset` (the load generator runs on the other), on a port the server picks and prints,
//! with extra flags; stopped with SIGKILL, because the analytics benchmarks then check
//! that everything the server acknowledged is in the database even after a hard kill.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::process::{Memory, parse_status};

/// How to start the server.
#[derive(Debug, Clone)]
pub struct ServeSpec {
    pub bin: PathBuf,
    pub data_dir: PathBuf,
    /// The core to pin it to (`taskset -c CPU`); `None` = every online core (see
    /// `on_cores`).
    pub cpu: Option<u32>,
    /// More `serve` flags, e.g. `--experiment-interval-secs 86400`.
    pub extra: Vec<String>,
    pub log: PathBuf,
}

/// A started server; killed on drop.
#[derive(Debug)]
pub struct PinnedServer {
    child: Child,
    pub url: String,
    log: PathBuf,
}

/// A command that runs `bin` on core `cpu`, or with `None` on every online core. A child
/// inherits its parent's CPU affinity, so a driver started under `taskset -c 1` would
/// otherwise put an "unpinned" server on its own core too; `None` widens it explicitly.
pub fn on_cores(bin: &Path, cpu: Option<u32>) -> anyhow::Result<Command> {
    let cores = match cpu {
        Some(cpu) => cpu.to_string(),
        None => std::fs::read_to_string("/sys/devices/system/cpu/online")
            .context("cannot read the online cores (/sys/devices/system/cpu/online)")?
            .trim()
            .to_owned(),
    };
    let mut c = Command::new("taskset");
    c.arg("-c").arg(cores).arg(bin);
    Ok(c)
}

/// Start the server and wait (at most 60 s) until it prints the URL it listens on.
pub fn start(spec: &ServeSpec) -> anyhow::Result<PinnedServer> {
    let out = std::fs::File::create(&spec.log)
        .with_context(|| format!("cannot create {}", spec.log.display()))?;
    let err = out.try_clone().context("cannot share the log file")?;
    let mut command = on_cores(&spec.bin, spec.cpu)?;
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(&spec.data_dir)
        .args(["--bind", "127.0.0.1", "--port", "0"])
        .args(&spec.extra)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    let child = command
        .spawn()
        .with_context(|| format!("cannot start {}", spec.bin.display()))?;
    let mut server = PinnedServer {
        child,
        url: String::new(),
        log: spec.log.clone(),
    };
    let give_up = Instant::now() + Duration::from_secs(60);
    while Instant::now() < give_up {
        if let Some(status) = server.child.try_wait().context("cannot poll the server")? {
            bail!(
                "promptstore exited with {status} at start; its output is in {}",
                server.log.display()
            );
        }
        let text = std::fs::read_to_string(&server.log).unwrap_or_default();
        if let Some(url) = listening_url(&text) {
            server.url = url;
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!(
        "promptstore did not print its address within 60 s ({})",
        server.log.display()
    )
}

/// The `http://127.0.0.1:PORT` of a `... listening on http://127.0.0.1:PORT` line.
pub fn listening_url(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let at = line.find("listening on http://")?;
        let url = line[at + "listening on ".len()..]
            .split_whitespace()
            .next()?;
        Some(url.trim_end_matches('/').to_owned())
    })
}

impl PinnedServer {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident memory now (and its peak).
    pub fn memory(&self) -> anyhow::Result<Memory> {
        memory_of(self.pid())
    }

    /// CPU time (user + system) the process has used so far.
    pub fn cpu_time(&self) -> anyhow::Result<Duration> {
        cpu_time_of(self.pid())
    }

    /// SIGKILL: no graceful shutdown, no final checkpoint. What the server acknowledged must
    /// be in the database anyway.
    pub fn kill_hard(mut self) -> anyhow::Result<()> {
        self.child.kill().context("cannot kill the server")?;
        self.child.wait().context("cannot reap the server")?;
        Ok(())
    }

    pub fn log(&self) -> &Path {
        &self.log
    }
}

impl Drop for PinnedServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `VmRSS` / `VmHWM` of any process.
pub fn memory_of(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    parse_status(&status)
}

/// utime + stime of a process, from `/proc/<pid>/stat` (clock ticks of 10 ms: Linux's
/// `USER_HZ` is 100 on every architecture the project builds for).
pub fn cpu_time_of(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    parse_cpu_ticks(&stat)
        .map(|ticks| Duration::from_millis(ticks * 10))
        .with_context(|| format!("unreadable /proc/{pid}/stat"))
}

/// Fields 14 and 15 (utime, stime) of a `/proc/<pid>/stat` line; the command name (field 2)
/// may hold spaces, so counting starts after its closing parenthesis.
pub fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_url_the_server_prints() {
        let log = "2025 INFO starting\npromptstore listening on http://127.0.0.1:40123\n";
        assert_eq!(
            listening_url(log).as_deref(),
            Some("http://127.0.0.1:40123")
        );
        assert_eq!(listening_url("nothing yet"), None);
    }

    #[test]
    fn reads_cpu_ticks_after_the_command_name() {
        let stat = "1234 (prompt store) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 8 0";
        assert_eq!(parse_cpu_ticks(stat), Some(300));
        assert_eq!(parse_cpu_ticks("garbage"), None);
        let me = cpu_time_of(std::process::id()).unwrap();
        assert!(me < Duration::from_secs(100_000));
    }
}
