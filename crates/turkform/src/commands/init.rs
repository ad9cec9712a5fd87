//! `turkform init [DIR]`.

use crate::cli::InitArgs;
use crate::failure::Failure;

pub fn run(args: &InitArgs) -> Result<u8, Failure> {
    let dir = args.dir.clone().unwrap_or_else(|| ".".into());
    // Random, so that two projects (or two copies of one) never share an identity by accident.
    let project = hex::encode(rand::random::<[u8; 6]>());
    let created = turkform_spec::init_project(&dir, &project).map_err(Failure::user)?;
    for path in &created {
        eprintln!("created {}", path.display());
    }
    eprintln!(
        "\nNext: `turkform validate`, then `turkform plan`. The project targets the MTurk sandbox; \
         set `target = \"sim\"` in turkform.toml to try it offline."
    );
    Ok(0)
}
