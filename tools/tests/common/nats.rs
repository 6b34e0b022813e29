//! Real `nats-server` processes for the replication tests: JetStream on 127.0.0.1 with its
//! store in a temporary directory, killed (SIGKILL) and restarted on the same port and store.
//!
//! The binary is `$VEREX_NATS_SERVER`, else Debian's `/usr/sbin/nats-server`, else
//! `nats-server` on the PATH (`.ci/run` installs Debian's package when it is missing).
#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(15);

/// The `nats-server` binary.
pub fn nats_server_binary() -> String {
    if let Ok(path) = std::env::var("VEREX_NATS_SERVER") {
        return path;
    }
    if Path::new("/usr/sbin/nats-server").exists() {
        return "/usr/sbin/nats-server".to_string();
    }
    "nats-server".to_string()
}

/// A free TCP port on 127.0.0.1 (bound, then released for the server to take).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// One `nats-server` with JetStream.
pub struct NatsServer {
    child: Option<Child>,
    /// Its client port.
    pub port: u16,
    args: Vec<String>,
    log: PathBuf,
    /// Times it was killed.
    pub kills: u32,
}

impl NatsServer {
    /// A single server on a free port, its JetStream store under `dir/name`.
    pub fn start(dir: &Path, name: &str) -> Self {
        Self::start_on(dir, name, free_port(), &[])
    }

    /// A server on `port` with extra arguments (cluster routes).
    pub fn start_on(dir: &Path, name: &str, port: u16, extra: &[String]) -> Self {
        let store = dir.join(format!("{name}-store"));
        let mut args = vec![
            "-a".to_string(),
            "127.0.0.1".to_string(),
            "-p".to_string(),
            port.to_string(),
            "-js".to_string(),
            "-sd".to_string(),
            store.display().to_string(),
            "--server_name".to_string(),
            name.to_string(),
        ];
        args.extend(extra.iter().cloned());
        let mut server = Self { child: None, port, args, log: dir.join(format!("{name}.log")), kills: 0 };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("server log");
        let child = Command::new(nats_server_binary())
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} (install Debian's nats-server): {e}", nats_server_binary()));
        self.child = Some(child);
        let deadline = Instant::now() + READY_TIMEOUT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "nats-server on port {} not ready; log {}",
                self.port,
                self.log.display()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// SIGKILL, and wait for it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
            self.kills += 1;
        }
    }

    /// Whether it runs.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        self.kills -= 1;
        self.spawn();
    }

    /// Starts it again after a kill.
    pub fn start_again(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Three JetStream servers clustered over loopback routes.
pub fn cluster(dir: &Path) -> Vec<NatsServer> {
    let client_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let route_ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    let routes = route_ports.iter().map(|p| format!("nats://127.0.0.1:{p}")).collect::<Vec<_>>().join(",");
    (0..3)
        .map(|i| {
            let extra = vec![
                "--cluster_name".to_string(),
                "verex-test".to_string(),
                "--cluster".to_string(),
                format!("nats://127.0.0.1:{}", route_ports[i]),
                "--routes".to_string(),
                routes.clone(),
            ];
            NatsServer::start_on(dir, &format!("n{}", i + 1), client_ports[i], &extra)
        })
        .collect()
}
