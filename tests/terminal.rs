//! hookrun on a pseudo-terminal, as a person (or an SSH session) runs it: for what it does only on a terminal (ask
//! before a restore, colour its log) and for what a terminal that hangs up does to a run.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// A command running as the session leader of a terminal of its own, its output read as it comes.
pub struct Terminal {
    pub child: Child,
    /// The terminal's master side, shared with the reader; closing the last one hangs the terminal up.
    master: Option<Arc<std::fs::File>>,
    output: Arc<Mutex<Vec<u8>>>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Terminal {
    /// Starts `command` with stdin, stdout and stderr on a new terminal that is its controlling terminal.
    pub fn spawn(mut command: Command) -> Self {
        // Both ends close-on-exec from the start: a process another test spawns meanwhile must not keep them open.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        assert!(master >= 0, "posix_openpt");
        let master = unsafe { OwnedFd::from_raw_fd(master) };
        assert_eq!(unsafe { libc::grantpt(master.as_raw_fd()) }, 0, "grantpt");
        assert_eq!(unsafe { libc::unlockpt(master.as_raw_fd()) }, 0, "unlockpt");
        let mut name = [0 as libc::c_char; 128];
        let named = unsafe { libc::ptsname_r(master.as_raw_fd(), name.as_mut_ptr(), name.len()) };
        assert_eq!(named, 0, "ptsname_r");
        let slave = unsafe { libc::open(name.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) };
        assert!(slave >= 0, "open the terminal's slave side");
        let slave = unsafe { OwnedFd::from_raw_fd(slave) };
        command
            .stdin(Stdio::from(slave.try_clone().unwrap()))
            .stdout(Stdio::from(slave.try_clone().unwrap()))
            .stderr(Stdio::from(slave));
        unsafe {
            command.pre_exec(|| {
                // A session of its own with the terminal as its controlling terminal: a hang-up is sent to it.
                if libc::setsid() < 0 || libc::ioctl(0, libc::TIOCSCTTY, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().unwrap();
        drop(command); // the parent's copies of the slave side: only the child holds the terminal now
        let master = Arc::new(std::fs::File::from(master));
        let output = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (source, sink, stopped) = (master.clone(), output.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stopped.load(Ordering::Relaxed) {
                let mut poll = libc::pollfd {
                    fd: source.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                };
                if unsafe { libc::poll(&mut poll, 1, 50) } <= 0 {
                    continue;
                }
                // Fails with EIO once no process holds the slave side.
                match (&*source).read(&mut buf) {
                    Ok(n @ 1..) => sink.lock().unwrap().extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
        });
        Self {
            child,
            master: Some(master),
            output,
            stop,
            reader: Some(reader),
        }
    }

    /// Types `line` and Enter.
    pub fn type_line(&mut self, line: &str) {
        let master = self.master.as_ref().expect("not hung up");
        (&**master).write_all(format!("{line}\n").as_bytes()).unwrap();
    }

    /// What the command wrote so far, with the terminal's `\r\n` as `\n`.
    pub fn output(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).replace("\r\n", "\n")
    }

    /// Hangs the terminal up, as a dropped SSH session does: SIGHUP, and every later write fails.
    pub fn hang_up(&mut self) {
        // The reader shares the master: it lets go of it first, then the last reference closes it.
        self.stop.store(true, Ordering::Relaxed);
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        drop(self.master.take().expect("not hung up twice"));
    }

    /// Waits for the command to end and returns its exit code and everything it wrote.
    pub fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        (status.code(), self.output())
    }
}
