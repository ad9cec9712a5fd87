//! Diagnostics: every problem found in a project, each pinned to `file:line:column`, collected
//! together so that one `turkform validate` shows everything to fix.

use std::fmt;
use std::path::{Path, PathBuf};

/// One problem in one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// The file, relative to the directory the command runs in (`campaigns/x.toml`), so that
    /// output and snapshots read the same on every machine.
    pub file: PathBuf,
    /// 1-based; 0 when the problem concerns the file (or folder) as a whole.
    pub line: usize,
    /// 1-based, in characters; 0 together with `line == 0`.
    pub column: usize,
    /// What is wrong, without a trailing period; values in backticks.
    pub message: String,
    /// What to do about it.
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(
        file: impl Into<PathBuf>,
        line: usize,
        column: usize,
        message: impl Into<String>,
    ) -> Self {
        Diagnostic {
            file: file.into(),
            line,
            column,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint line.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Adds a hint when there is one.
    pub fn with_hint_opt(mut self, hint: Option<String>) -> Self {
        self.hint = hint;
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        if self.line == 0 {
            write!(f, "{file}: error: {}", self.message)?;
        } else {
            write!(
                f,
                "{file}:{}:{}: error: {}",
                self.line, self.column, self.message
            )?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found, in file then line order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Number of distinct files with at least one problem.
    pub fn file_count(&self) -> usize {
        let mut files: Vec<&Path> = self.0.iter().map(|d| d.file.as_path()).collect();
        files.sort();
        files.dedup();
        files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The one-line count every front end prints after the diagnostics: `2 errors in 1 file`
    /// (one wording for the library and the CLI; each diagnostic itself reads `error:`).
    pub fn summary(&self) -> String {
        let n = self.0.len();
        let m = self.file_count();
        format!(
            "{n} error{} in {m} file{}",
            if n == 1 { "" } else { "s" },
            if m == 1 { "" } else { "s" }
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Diagnostic> {
        self.0.iter()
    }

    /// Stable order for output and snapshots: by file, then position; the order of discovery
    /// is kept among equals (the sort is stable).
    pub(crate) fn sort(&mut self) {
        self.0
            .sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    }
}

impl From<Vec<Diagnostic>> for Diagnostics {
    fn from(v: Vec<Diagnostic>) -> Self {
        let mut d = Diagnostics(v);
        d.sort();
        d
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "{d}")?;
        }
        f.write_str(&self.summary())
    }
}

impl std::error::Error for Diagnostics {}

/// Failures of [`crate::init_project`] (validation problems are [`Diagnostics`]).
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("`{}` already exists; turkform init never overwrites files", .0.display())]
    AlreadyExists(PathBuf),
    #[error("cannot write `{}`", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A text file with a line index, to turn byte offsets into `line:column`.
#[derive(Debug)]
pub(crate) struct SourceFile<'a> {
    /// Display path (relative, as the user wrote it).
    pub path: &'a Path,
    pub text: &'a str,
    line_starts: Vec<usize>,
}

impl<'a> SourceFile<'a> {
    pub fn new(path: &'a Path, text: &'a str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and character column of a byte offset.
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        (line, column)
    }

    /// A diagnostic at a byte offset of this file.
    pub fn at(&self, offset: usize, message: impl Into<String>) -> Diagnostic {
        let (line, column) = self.position(offset);
        Diagnostic::new(self.path, line, column, message)
    }
}

/// The known name closest to `given`, if any is close enough to be what was meant.
pub(crate) fn did_you_mean<'k>(
    given: &str,
    known: impl IntoIterator<Item = &'k str>,
) -> Option<&'k str> {
    let given_lower = given.to_ascii_lowercase();
    known
        .into_iter()
        .map(|k| {
            (
                k,
                strsim::jaro_winkler(&given_lower, &k.to_ascii_lowercase()),
            )
        })
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

/// Lexically cleans a path for display: drops `.` components and folds `dir/..`, so that
/// `campaigns/./templates/../data/x.csv` reads `campaigns/data/x.csv`. Never touches the disk.
pub(crate) fn clean_path(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    if out.is_empty() {
        return PathBuf::from(".");
    }
    out.iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_characters() {
        let p = Path::new("x.toml");
        let s = SourceFile::new(p, "a = 1\nbé = \"x\"\n");
        assert_eq!(s.position(0), (1, 1));
        assert_eq!(s.position(6), (2, 1));
        // `=` after the two-byte `é` is the 4th character.
        assert_eq!(s.position(10), (2, 4));
    }

    #[test]
    fn suggestions_need_to_be_close() {
        assert_eq!(did_you_mean("titel", ["title", "reward"]), Some("title"));
        assert_eq!(did_you_mean("zzz", ["title", "reward"]), None);
    }

    #[test]
    fn paths_are_cleaned_lexically() {
        assert_eq!(
            clean_path(Path::new("./campaigns/./t/../data/x.csv")),
            PathBuf::from("campaigns/data/x.csv")
        );
        assert_eq!(clean_path(Path::new("../x")), PathBuf::from("../x"));
    }
}
