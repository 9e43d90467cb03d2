//! A throwaway PostgreSQL server for tests: `initdb` into a temp dir, `pg_ctl start` on a free
//! port with the socket in that dir, `pg_ctl stop -m immediate` on drop.
//!
//! The server binaries come from `PATH` (`initdb`, `pg_ctl`) or Debian's `/usr/lib/postgresql/<N>/bin`.
//! PostgreSQL refuses to run as root, so under root every command runs as the `postgres` system
//! user (Debian's package creates it), else `nobody`, via `runuser`. Authentication is `trust`
//! on 127.0.0.1 only. Panics name what failed: tests need the real server and must not skip.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::tools::find_on_path;

/// The database user every URL uses.
pub const USER: &str = "comfydock";

/// A running PostgreSQL server; stopped and deleted when dropped.
pub struct PostgresServer {
    dir: tempfile::TempDir,
    bin: PathBuf,
    run_as: Option<String>,
    port: u16,
}

impl PostgresServer {
    /// Creates and starts a fresh cluster.
    pub fn start() -> Self {
        let bin = server_bin_dir();
        let run_as = unprivileged_user();
        let dir = tempfile::Builder::new()
            .prefix("comfydock-pg-")
            .tempdir()
            .expect("create a temp dir for PostgreSQL");
        if let Some(user) = &run_as {
            checked(
                Command::new("chown").arg(format!("{user}:")).arg(dir.path()),
                "chown the PostgreSQL temp dir",
            );
        }
        let server = Self {
            dir,
            bin,
            run_as,
            port: crate::python_server::free_port(),
        };
        server.run(
            "initdb",
            &[
                "-D",
                &server.data_dir().display().to_string(),
                "-U",
                USER,
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off \
             -c full_page_writes=off -c max_connections=100",
            server.port,
            server.dir.path().display()
        );
        let log = server.dir.path().join("server.log");
        let start = server.output(
            "pg_ctl",
            &[
                "-D",
                &server.data_dir().display().to_string(),
                "-o",
                &options,
                "-l",
                &log.display().to_string(),
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        if !start.status.success() {
            let log_text = fs_err::read_to_string(&log).unwrap_or_default();
            panic!(
                "pg_ctl start failed ({}):\n{}\n{}\nserver log:\n{log_text}",
                start.status,
                String::from_utf8_lossy(&start.stdout),
                String::from_utf8_lossy(&start.stderr)
            );
        }
        server
    }

    /// Restarts the server on the same port (fast shutdown: open connections are dropped).
    pub fn restart(&self) {
        let data = self.data_dir().display().to_string();
        let log = self.dir.path().join("server.log").display().to_string();
        self.run(
            "pg_ctl",
            &["-D", &data, "-l", &log, "-m", "fast", "-w", "-t", "60", "restart"],
        );
    }

    /// The port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A URL of the default `postgres` database.
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// A URL of database `name` (create it first with [`PostgresServer::create_database`]).
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{name}", self.port)
    }

    /// Creates an empty database and returns its URL.
    pub fn create_database(&self, name: &str) -> String {
        self.run(
            "createdb",
            &["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", USER, name],
        );
        self.database_url(name)
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn command(&self, tool: &str) -> Command {
        let program = self.bin.join(tool);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut cmd = Command::new("runuser");
                cmd.arg("-u").arg(user).arg("--").arg(program);
                cmd
            }
            None => Command::new(program),
        };
        cmd.current_dir(self.dir.path());
        for var in ["PGDATA", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"] {
            cmd.env_remove(var);
        }
        cmd
    }

    fn output(&self, tool: &str, args: &[&str]) -> Output {
        self.command(tool)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", self.bin.join(tool).display()))
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let output = self.output(tool, args);
        assert!(
            output.status.success(),
            "`{tool} {}` failed ({}):\n{}\n{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.data_dir().display().to_string();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

/// The directory holding `initdb`, `pg_ctl`, `postgres` and `createdb`.
fn server_bin_dir() -> PathBuf {
    if let Some(initdb) = find_on_path("initdb") {
        let resolved = fs_err::canonicalize(&initdb).unwrap_or(initdb);
        if let Some(dir) = resolved
            .parent()
            .filter(|d| d.join("pg_ctl").is_file() && d.join("createdb").is_file())
        {
            return dir.to_owned();
        }
    }
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = fs_err::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file());
    versions.sort();
    versions.pop().expect(
        "PostgreSQL server binaries not found (no `initdb` on PATH, nothing in /usr/lib/postgresql/*/bin); \
         install them with `apt-get install -y postgresql`",
    )
}

/// Under root: the user to run the server as (`postgres`, else `nobody`). Otherwise `None`.
fn unprivileged_user() -> Option<String> {
    let uid = Command::new("id").arg("-u").output().expect("run `id -u`");
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return None;
    }
    ["postgres", "nobody"]
        .into_iter()
        .find(|user| {
            Command::new("id")
                .arg(user)
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .map(str::to_owned)
        .or_else(|| {
            panic!("running as root and neither a `postgres` nor a `nobody` user exists to run PostgreSQL")
        })
}

fn checked(cmd: &mut Command, what: &str) {
    let status = cmd.status().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(status.success(), "{what}: {status}");
}
