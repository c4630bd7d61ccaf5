//! What the process tests share: waiting for a child with a deadline, so a shutdown that hangs
//! fails the test instead of hanging the run.
// Each test binary uses its own part of this module.
#![allow(dead_code)]

use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

/// Waits for `child` to exit, at most `timeout`; past it the child is killed and the test fails.
pub fn wait_for_exit(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the process did not exit within {timeout:?}");
            }
            Err(error) => panic!("waiting for the process failed: {error}"),
        }
    }
}

/// Ends `child` if it still runs: `signal` first, then a kill after `grace` (for `Drop`s, which
/// must never hang).
pub fn stop(child: &mut Child, signal: &str, grace: Duration) {
    if let Ok(None) = child.try_wait() {
        let _ = std::process::Command::new("kill").args([signal, &child.id().to_string()]).status();
        let deadline = Instant::now() + grace;
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
