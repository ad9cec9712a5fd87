//! `turkform validate` and `turkform render`.

use std::io::Write;

use turkform_model::{Question, UnixTime};

use crate::cli::RenderArgs;
use crate::failure::Failure;
use crate::settings::Resolved;

pub fn validate(resolved: &Resolved, now: UnixTime) -> Result<u8, Failure> {
    let desired = super::load_desired(resolved, &[], now)?;
    let items: usize = desired.campaigns.iter().map(|c| c.items.len()).sum();
    eprintln!(
        "ok: {} campaign{}, {items} item{}, {} custom qualification type{} (target {})",
        desired.campaigns.len(),
        plural(desired.campaigns.len()),
        plural(items),
        desired.qualification_types.len(),
        plural(desired.qualification_types.len()),
        resolved.target,
    );
    Ok(0)
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn render(resolved: &Resolved, args: &RenderArgs, now: UnixTime) -> Result<u8, Failure> {
    let opts = turkform_spec::LoadOptions {
        target: resolved.target,
        workers: resolved.workers.clone(),
        campaigns_dir: resolved.campaigns_dir.clone(),
        only: vec![args.campaign.clone()],
        now,
    };
    let rendered = turkform_spec::render_item(&opts, &args.campaign, args.item.as_deref())
        .map_err(super::diagnostics_failure)?;
    let mut out = std::io::stdout().lock();
    let text = match &rendered.question {
        Question::Xml { xml } => format!("{xml}\n"),
        Question::Layout {
            layout_id,
            parameters,
        } => {
            let mut s = format!("HITLayoutId: {layout_id}\n");
            for (name, value) in parameters {
                s.push_str(&format!("  {name} = {value:?}\n"));
            }
            s
        }
    };
    out.write_all(text.as_bytes()).map_err(Failure::internal)?;
    eprintln!(
        "rendered item `{}` of campaign `{}`",
        rendered.key, rendered.campaign
    );
    Ok(0)
}
