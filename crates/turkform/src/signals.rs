//! The signals that ask turkform to stop: Ctrl-C (SIGINT) and SIGTERM (what `kill`, systemd,
//! Docker and CI runners send). Both are handled alike: stop sending, finish and record what is
//! in flight, exit 1 (DESIGN.md section 4).

/// Waits for the next Ctrl-C or SIGTERM and says which it was; `None` if signals cannot be
/// listened to (then the default action, ending the process, applies).
pub async fn interrupted() -> Option<&'static str> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).ok()?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.ok().map(|()| "Ctrl-C"),
            r = term.recv() => r.map(|()| "SIGTERM"),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.ok().map(|()| "Ctrl-C")
    }
}
