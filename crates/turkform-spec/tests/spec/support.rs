//! Helpers shared by the integration tests.

use std::path::{Path, PathBuf};

use turkform_model::{Target, UnixTime};
use turkform_spec::LoadOptions;

/// A fixed "now" (2026-01-01T00:00:00Z) so that `ends_at` checks never depend on the clock.
pub const NOW: UnixTime = UnixTime(1_767_225_600);

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs `f` with the working directory at `dir`, serialised, so that diagnostics show the same
/// relative paths users see. Tests that change directory must all go through here.
pub fn in_dir<T>(dir: &Path, f: impl FnOnce() -> T) -> T {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let before = std::env::current_dir().unwrap();
    std::env::set_current_dir(dir).unwrap();
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::env::set_current_dir(before).unwrap();
    match out {
        Ok(v) => v,
        Err(e) => std::panic::resume_unwind(e),
    }
}

pub fn options(dir: &str, target: Target) -> LoadOptions {
    LoadOptions {
        target,
        workers: Default::default(),
        campaigns_dir: PathBuf::from(dir),
        only: Vec::new(),
        now: NOW,
    }
}
