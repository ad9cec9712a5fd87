//! `turkform init [DIR]`: a project that validates and plans out of the box.

use std::path::{Path, PathBuf};

use crate::diagnostic::SpecError;

/// (path relative to the project, contents).
const FILES: [(&str, &str); 5] = [
    ("turkform.toml", include_str!("scaffold/turkform.toml")),
    (
        "campaigns/example.toml",
        include_str!("scaffold/example.toml"),
    ),
    (
        "campaigns/templates/example.html",
        include_str!("scaffold/example.html"),
    ),
    (
        "campaigns/data/example.csv",
        include_str!("scaffold/example.csv"),
    ),
    ("state/.gitkeep", ""),
];

/// Creates the scaffold in `dir` (created if needed) with `project` as the project identity in
/// `turkform.toml` (the caller makes it random: see [`crate::valid_project_id`]). Refuses before
/// writing anything if any of the files exists, so it never overwrites work.
pub fn init_project(dir: &Path, project: &str) -> Result<Vec<PathBuf>, SpecError> {
    let paths: Vec<PathBuf> = FILES.iter().map(|(p, _)| dir.join(p)).collect();
    if let Some(existing) = paths.iter().find(|p| p.exists()) {
        return Err(SpecError::AlreadyExists(existing.clone()));
    }
    let settings = format!(
        "# The project's identity, in every HIT's annotation: keep it, and give another project\n\
         # (a copy of this one, say) another, or the two would take each other's HITs for their own.\n\
         project = \"{project}\"\n{}",
        FILES[0].1
    );
    for (i, (path, (_, contents))) in paths.iter().zip(FILES).enumerate() {
        let contents = if i == 0 { settings.as_str() } else { contents };
        let write = || -> std::io::Result<()> {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // create_new: a file appearing since the check above is still never overwritten.
            use std::io::Write;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?
                .write_all(contents.as_bytes())
        };
        write().map_err(|source| SpecError::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(paths)
}
