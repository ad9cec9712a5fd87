//! `turkform.toml`: where the campaigns and the state live, which target, apply concurrency.

use std::path::{Path, PathBuf};

use toml::de::DeTable;
use turkform_model::Target;

use crate::diagnostic::{Diagnostic, Diagnostics, SourceFile, clean_path};
use crate::toml_read::{FileDiagnostics, Table};

/// Project settings (DESIGN.md section 2). Paths are relative to the project root as given to
/// [`load_settings`] (unchanged when that is `.`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Folder of campaign files; default `campaigns`.
    pub campaigns: PathBuf,
    /// State database; default `state/turkform.db`.
    pub state: PathBuf,
    /// `None` when the file does not say: the caller applies its own default (sandbox).
    pub target: Option<Target>,
    pub apply: ApplySettings,
    /// The project identity (`project`), carried in every annotation so that two projects on
    /// one account never adopt each other's HITs; `None` for a project made before it existed.
    pub project: Option<String>,
    /// `[workers]` (DESIGN.md section 9).
    pub workers: WorkersSettings,
}

/// The `[workers]` table: the project-wide blocks file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WorkersSettings {
    /// `blocks`, relative to the project root like `state`; with where it is written.
    pub blocks: Option<(PathBuf, crate::DeclaredAt)>,
}

/// The `[apply]` table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApplySettings {
    /// Maximum requests in flight (the executor adapts down on throttling); 1..=256, default 16.
    pub concurrency: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            campaigns: PathBuf::from("campaigns"),
            state: PathBuf::from("state/turkform.db"),
            target: None,
            apply: ApplySettings { concurrency: 16 },
            project: None,
            workers: WorkersSettings::default(),
        }
    }
}

const KEYS: [&str; 6] = [
    "campaigns",
    "state",
    "target",
    "apply",
    "project",
    "workers",
];
const WORKERS_KEYS: [&str; 1] = ["blocks"];

/// Longest project identity: it goes into every annotation (255 characters in all).
pub const MAX_PROJECT_CHARS: usize = 40;

/// Whether `id` can be a project identity: 1 to 40 of `a-z`, `0-9` and `-`, not starting with
/// `-` (it is written into annotations, where `:` separates fields).
pub fn valid_project_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_PROJECT_CHARS
        && !id.starts_with('-')
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}
const APPLY_KEYS: [&str; 1] = ["concurrency"];

/// Reads `turkform.toml` in `project_root`; a missing file means all defaults.
pub fn load_settings(project_root: &Path) -> Result<Settings, Diagnostics> {
    let path = clean_path(&project_root.join("turkform.toml"));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(e) => {
            return Err(Diagnostics::from(vec![Diagnostic::new(
                path,
                0,
                0,
                format!("cannot read the file: {e}"),
            )]));
        }
    };
    let src = SourceFile::new(&path, &text);
    let doc = match DeTable::parse(&text) {
        Ok(d) => d.into_inner(),
        Err(e) => {
            let at = e.span().map_or(0, |s| s.start);
            return Err(Diagnostics::from(vec![
                src.at(at, format!("TOML syntax error: {}", e.message().trim())),
            ]));
        }
    };
    let mut r = FileDiagnostics::new(&src);
    let root = Table::new(&doc, 0, "turkform.toml");
    root.check_keys(&mut r, &KEYS, &[("concurrency", "[apply]")]);
    let base = |p: &str| -> PathBuf {
        if project_root == Path::new(".") || project_root.as_os_str().is_empty() {
            PathBuf::from(p)
        } else {
            clean_path(&project_root.join(p))
        }
    };
    let mut settings = Settings::default();
    if let Some((c, _)) = root.str(&mut r, "campaigns", None) {
        settings.campaigns = base(c);
    }
    if let Some((s, _)) = root.str(&mut r, "state", None) {
        settings.state = base(s);
    }
    if let Some((t, span)) = root.str(&mut r, "target", None) {
        match t.parse::<Target>() {
            Ok(t) => settings.target = Some(t),
            Err(e) => r.error(
                span.start,
                e,
                Some("`sim` runs offline; `sandbox` is MTurk's free test site".into()),
            ),
        }
    }
    if let Some((p, span)) = root.str(&mut r, "project", None) {
        if valid_project_id(p) {
            settings.project = Some(p.to_owned());
        } else {
            r.error(
                span.start,
                format!("`project` = \"{p}\" is not a project identity"),
                Some(
                    "use 1 to 40 of a-z, 0-9 and `-`; keep the one `turkform init` wrote, since it is how turkform tells its HITs from other projects'".into(),
                ),
            );
        }
    }
    if let Some(apply) = root.table(&mut r, "apply", "[apply]") {
        apply.check_keys(&mut r, &APPLY_KEYS, &[]);
        if let Some((n, span)) = apply.int(&mut r, "concurrency") {
            match check_concurrency(n) {
                Ok(n) => settings.apply.concurrency = n,
                Err(hint) => r.error(
                    span.start,
                    format!("`concurrency` = {n} is out of range"),
                    Some(hint),
                ),
            }
        }
    }
    if let Some(workers) = root.table(&mut r, "workers", "[workers]") {
        workers.check_keys(&mut r, &WORKERS_KEYS, &[]);
        if let Some((b, span)) = workers.str(
            &mut r,
            "blocks",
            Some("name a CSV file with WorkerId and Reason, relative to turkform.toml"),
        ) {
            if b.ends_with(".csv") {
                let (line, column) = r.src.position(span.start);
                settings.workers.blocks = Some((
                    base(b),
                    crate::DeclaredAt {
                        file: path.clone(),
                        line,
                        column,
                    },
                ));
            } else {
                r.error(
                    span.start,
                    format!("`{b}` is not a .csv file"),
                    Some("the blocks file is CSV with the columns WorkerId and Reason".into()),
                );
            }
        }
    }
    if r.diags.is_empty() {
        Ok(settings)
    } else {
        Err(Diagnostics::from(r.diags))
    }
}

/// The one rule for `apply.concurrency`, `TURKFORM_CONCURRENCY` and `--concurrency` alike;
/// the error is the hint to show.
pub fn check_concurrency(n: i64) -> Result<usize, String> {
    if (1..=256).contains(&n) {
        Ok(usize::try_from(n).unwrap_or(16))
    } else {
        Err("use 1 to 256 requests in flight".to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_means_defaults_and_unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_settings(dir.path()).unwrap(), Settings::default());
        std::fs::write(
            dir.path().join("turkform.toml"),
            "target = \"sim\"\ncampaign = \"x\"\n[apply]\nconcurrency = 4\n",
        )
        .unwrap();
        let err = load_settings(dir.path()).unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert_eq!((err.0[0].line, err.0[0].column), (2, 1));
        assert_eq!(err.0[0].hint.as_deref(), Some("did you mean `campaigns`?"));
        std::fs::write(
            dir.path().join("turkform.toml"),
            "target = \"sim\"\n[apply]\nconcurrency = 4\n",
        )
        .unwrap();
        let s = load_settings(dir.path()).unwrap();
        assert_eq!(s.target, Some(Target::Sim));
        assert_eq!(s.apply.concurrency, 4);
    }
}
