//! A PostgreSQL cluster of a test's own, for what must never be done to the shared server of
//! `TURKFORM_TEST_PG` (restarting it, switching TLS on): `initdb` into a temporary directory,
//! a free loopback port, `pg_ctl start`; stopped and removed when dropped, a panicking test
//! included. It needs only the server binaries, never the shared server.
//!
//! `initdb` and `postgres` refuse to run as root (CI runs as root), so there they run as
//! `nobody` through `runuser`, as `scripts/test-pg-env` does.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// How the cluster takes connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClusterTls {
    /// No TLS at all: `sslmode=require` must be refused.
    Off,
    /// `ssl = on` with a self-signed certificate made for the test (CN `localhost`, names
    /// `localhost` and `127.0.0.1`), and unencrypted TCP logins rejected, so that a session
    /// that works is known to be encrypted.
    Required,
}

pub struct PgCluster {
    /// Removed last (fields drop in order after [`Drop::drop`] has stopped the server).
    dir: tempfile::TempDir,
    bindir: PathBuf,
    port: u16,
    as_nobody: bool,
}

impl PgCluster {
    /// Creates and starts a cluster; panics (never skips) when the binaries are missing.
    pub fn start(tls: ClusterTls) -> PgCluster {
        let bindir = server_bindir();
        let as_nobody = running_as_root();
        let dir = tempfile::Builder::new()
            .prefix("turkform-pgc.")
            .tempdir()
            .expect("a temporary directory for the cluster");
        if as_nobody {
            run_ok(Command::new("chown").arg("nobody").arg(dir.path()));
        }
        let mut cluster = PgCluster {
            dir,
            bindir,
            port: 0,
            as_nobody,
        };
        cluster.initdb(tls);
        // A port can be taken between choosing it and the server binding it: try a few.
        for attempt in 0..5 {
            cluster.port = free_port();
            cluster.write_port();
            let out = cluster.pg_ctl(&["-w", "-t", "60", "start"]);
            if out.status.success() {
                return cluster;
            }
            let log = std::fs::read_to_string(cluster.log()).unwrap_or_default();
            assert!(
                attempt < 4 && log.contains("could not bind"),
                "pg_ctl start failed: {}\n{log}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        unreachable!("the loop returns or panics")
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A command of the server binaries, as `nobody` when this process is root.
    fn server_command(&self, program: &str) -> Command {
        let program = self.bindir.join(program);
        if self.as_nobody {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "nobody", "--"]).arg(program);
            cmd
        } else {
            Command::new(program)
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        self.server_command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(args)
            .output()
            .expect("run pg_ctl")
    }

    fn initdb(&self, tls: ClusterTls) {
        run_ok(
            self.server_command("initdb")
                .arg("-D")
                .arg(self.data())
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]),
        );
        let mut conf = format!(
            "\n# turkform test cluster\nlisten_addresses = '127.0.0.1,127.0.0.2'\n\
             unix_socket_directories = '{}'\nmax_connections = 60\n",
            self.dir.path().display()
        );
        if tls == ClusterTls::Required {
            self.make_certificate();
            conf.push_str("ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n");
            // The admin connects through the socket; TCP without TLS is turned away.
            std::fs::write(
                self.data().join("pg_hba.conf"),
                "local all all trust\nhostssl all all 127.0.0.0/8 trust\n\
                 hostnossl all all 127.0.0.0/8 reject\n",
            )
            .expect("write pg_hba.conf");
        }
        append(&self.data().join("postgresql.conf"), &conf);
    }

    /// `port = N` as the last word of the configuration (a later line wins).
    fn write_port(&self) {
        append(
            &self.data().join("postgresql.conf"),
            &format!("port = {}\n", self.port),
        );
    }

    /// A self-signed certificate (its own CA) and its key, readable by the server only.
    fn make_certificate(&self) {
        let data = self.data();
        self_signed_certificate(&data.join("server.crt"), &data.join("server.key"));
        std::fs::copy(data.join("server.crt"), self.ca_file()).expect("copy the certificate");
        for file in ["server.key", "server.crt"] {
            let path = data.join(file);
            if self.as_nobody {
                run_ok(Command::new("chown").arg("nobody").arg(&path));
            }
            run_ok(Command::new("chmod").arg("600").arg(&path));
        }
    }

    /// The certificate the server presents (it is its own CA), outside the data directory.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// A turkform state URL on this cluster: schema `schema`, with extra `&key=value`s.
    pub fn url(&self, schema: &str, extra: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/postgres?schema={schema}{extra}",
            self.port
        )
    }

    /// A session as the cluster's superuser through its Unix socket (which works whatever
    /// TCP logins the cluster accepts).
    pub fn admin(&self) -> postgres::Client {
        let mut config = postgres::Config::new();
        config
            .host_path(self.dir.path())
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect_timeout(Duration::from_secs(10));
        config
            .connect(postgres::NoTls)
            .expect("connect to the test cluster")
    }

    /// One value of a query against `schema` (e.g. `SELECT count(*) FROM hits`).
    pub fn count(&self, schema: &str, sql: &str) -> i64 {
        let mut client = self.admin();
        client
            .batch_execute(&format!("SET search_path TO \"{schema}\""))
            .unwrap();
        client.query_one(sql, &[]).unwrap().get::<_, i64>(0)
    }

    /// Restarts the server the way an operator would (`pg_ctl restart -m fast`: every session
    /// is terminated, in-flight transactions roll back), returning once it accepts logins.
    pub fn restart(&self) {
        let out = self.pg_ctl(&["-m", "fast", "-w", "-t", "60", "restart"]);
        assert!(
            out.status.success(),
            "pg_ctl restart failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.log()).unwrap_or_default()
        );
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: nothing here is worth a checkpoint. The directory goes with `dir`.
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "-t", "30", "stop"]);
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1` (not 127.0.0.2), valid two days,
/// made with the openssl CLI: `crt` and its unencrypted key `key`.
pub fn self_signed_certificate(crt: &Path, key: &Path) {
    run_ok(
        Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args(["-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            .arg("-keyout")
            .arg(key)
            .arg("-out")
            .arg(crt),
    );
}

/// The directory of `initdb` and `pg_ctl`: `TURKFORM_PG_BINDIR`, then `initdb` on `PATH`,
/// then the newest `/usr/lib/postgresql/<version>/bin` (Debian keeps them off `PATH`).
fn server_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TURKFORM_PG_BINDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("initdb"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok());
    if let Some(initdb) = on_path {
        return initdb.parent().unwrap().to_path_buf();
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).expect(
        "no PostgreSQL server binaries (initdb, pg_ctl) on PATH or in /usr/lib/postgresql: \
         install Debian's postgresql (./scripts/test does) or set TURKFORM_PG_BINDIR",
    )
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    // /proc/self belongs to this process's effective user.
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

fn append(path: &Path, text: &str) {
    use std::io::Write;
    std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}

#[track_caller]
fn run_ok(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
