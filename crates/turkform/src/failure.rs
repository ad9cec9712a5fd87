//! How a command fails: an error chain, an exit code (1 user error, 2 internal error) and
//! optional hints, printed as `error: ...`, `  caused by: ...`, `  hint: ...` on stderr.

use std::fmt::Display;

#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub error: anyhow::Error,
    pub hints: Vec<String>,
}

impl Failure {
    /// A problem with what the user asked or gave (invalid campaign, refused plan, lock held).
    pub fn user(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 1,
            error: error.into(),
            hints: Vec::new(),
        }
    }

    /// A problem turkform could not handle (a bug, a broken environment).
    pub fn internal(error: impl Into<anyhow::Error>) -> Failure {
        Failure {
            code: 2,
            error: error.into(),
            hints: Vec::new(),
        }
    }

    pub fn user_msg(message: impl Display) -> Failure {
        Failure::user(anyhow::anyhow!("{message}"))
    }

    pub fn hint(mut self, hint: impl Display) -> Failure {
        self.hints.push(hint.to_string());
        self
    }

    /// Whether this is a write to stdout whose reader went away (`| head -1`): the command
    /// then ends quietly with 0.
    pub fn is_closed_stdout(&self) -> bool {
        self.error.chain().any(|e| {
            e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        })
    }

    pub fn print(&self) {
        let style = crate::settings::stderr_color();
        let label = if style {
            "\x1b[1;31merror:\x1b[0m"
        } else {
            "error:"
        };
        eprintln!("{label} {}", self.error);
        for cause in self.error.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        for hint in &self.hints {
            eprintln!("  hint: {hint}");
        }
    }
}
