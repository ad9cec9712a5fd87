//! Writing a whole output file (`results --output`, `report --output`).

use std::path::Path;

/// Whether `path` may be replaced by renaming a finished temporary file over it: only a regular
/// file, or nothing yet. A device (`--output /dev/null`), a FIFO or a symlink is written in
/// place instead: a rename would put a plain file where the device or the link was.
pub fn replace_by_rename(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.file_type().is_file(),
        Err(_) => true,
    }
}
