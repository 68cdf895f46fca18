//! The one way the tests run the `coupler` binary (just's `Test`, ripgrep's `TestCommand`):
//! always without colour; arguments, folder, environment and stdin are set on the builder, then
//! [`Coupler::output`] (or [`Coupler::status`] to check the exit code) or [`Coupler::spawn`].

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

/// A `coupler` command being put together.
pub struct Coupler {
    cmd: Command,
    stdin: Option<Vec<u8>>,
    stdout: Option<Stdio>,
    stderr: Option<Stdio>,
}

/// `coupler ARGS`, in the test's own folder until [`Coupler::current_dir`] says otherwise.
pub fn coupler<I, S>(args: I) -> Coupler
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Coupler::new().args(args)
}

impl Default for Coupler {
    fn default() -> Self {
        Self::new()
    }
}

impl Coupler {
    pub fn new() -> Coupler {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coupler"));
        cmd.env("NO_COLOR", "1").env_remove("CLICOLOR_FORCE");
        Coupler {
            cmd,
            stdin: None,
            stdout: None,
            stderr: None,
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Coupler {
        self.cmd.arg(arg);
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Coupler
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.cmd.args(args);
        self
    }

    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Coupler {
        self.cmd.current_dir(dir);
        self
    }

    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Coupler {
        self.cmd.env(key, value);
        self
    }

    /// Bytes written to the process's stdin (closed afterwards); without it stdin is empty.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Coupler {
        self.stdin = Some(bytes.into());
        self
    }

    /// Where stdout goes instead of being captured.
    pub fn stdout(mut self, to: Stdio) -> Coupler {
        self.stdout = Some(to);
        self
    }

    /// Where stderr goes instead of being captured.
    pub fn stderr(mut self, to: Stdio) -> Coupler {
        self.stderr = Some(to);
        self
    }

    /// Starts the process: stdin as set (else empty), stdout and stderr piped unless redirected.
    pub fn spawn(mut self) -> Child {
        let input = self.stdin.take();
        self.cmd
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(self.stdout.take().unwrap_or_else(Stdio::piped))
            .stderr(self.stderr.take().unwrap_or_else(Stdio::piped));
        let mut child = self.cmd.spawn().expect("the coupler binary starts");
        if let Some(bytes) = input {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            // A thread, so a process that writes much before reading cannot block us both.
            // A process that stops reading early closes the pipe: its output tells the test.
            std::thread::spawn(move || pipe.write_all(&bytes).ok());
        }
        child
    }

    /// Runs the process to its end and returns what it printed and its status.
    pub fn output(self) -> Output {
        self.spawn()
            .wait_with_output()
            .expect("the coupler binary runs")
    }

    /// [`Coupler::output`], failing the test (with both streams) unless the exit code is `code`.
    pub fn status(self, code: i32) -> Output {
        let out = self.output();
        assert_eq!(
            out.status.code(),
            Some(code),
            "coupler exited with {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}
