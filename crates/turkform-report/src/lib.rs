//! The HTML report of `turkform report` (DESIGN section 12): one self-contained page per run,
//! with an overview of every campaign, then per campaign its progress, spend against budget,
//! assignment statuses, busiest workers, agreement per item and a projected completion time.
//!
//! This crate owns [`ReportData`] (plain figures) and the pure [`render`] that turns it into
//! HTML through minijinja templates and hand-written SVG. It must not know where the figures
//! come from (state store, campaign files, MTurk) nor touch files, clocks or the network: the
//! binary builds the data, calls [`render`] and writes the result. The page itself fetches
//! nothing: inline CSS and SVG only, no script.
//!
//! Modules: [`data`] the input, `view` the page model (downsampling, bounded tables, the
//! projection), `svg` the charts.

pub mod data;
mod svg;
mod view;

pub use data::{
    CampaignReport, ItemAgreement, ProgressPoint, ReportData, SpendPoint, StatusCounts,
    WorkerSummary,
};
pub use view::{Projection, project_completion};

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A figure that must be a share (agreement, accuracy) is outside `[0, 1]` or not a number.
    #[error(
        "campaign `{campaign}`: {what} is {value}, not a share between 0 and 1; fix the figures passed to the report"
    )]
    NotAShare {
        campaign: String,
        what: String,
        value: f64,
    },
    /// Two campaigns with one name would share anchors and be indistinguishable on the page.
    #[error("campaign `{0}` appears twice in the report data; pass each campaign once")]
    DuplicateCampaign(String),
    /// The embedded templates failed (a bug in this crate, never in the data).
    #[error("the report template failed to render")]
    Template(#[source] minijinja::Error),
}

const TEMPLATE: &str = include_str!("../templates/report.html");
const STYLE: &str = include_str!("../templates/report.css");

/// Renders `data` as one self-contained HTML document.
///
/// Long series are downsampled (at most [`view::MAX_CHART_POINTS`] points per line), and the
/// tables are bounded (the 20 busiest workers, the 20 least-agreed items), so the page stays
/// small whatever the campaign's size.
pub fn render(data: &ReportData) -> Result<String, ReportError> {
    let page = view::build(data)?;
    let mut env = minijinja::Environment::new();
    // `.html` names turn on HTML auto-escaping for every value the data carries; only the SVG
    // this crate writes itself is passed through `|safe`.
    env.add_template("report.html", TEMPLATE)
        .map_err(ReportError::Template)?;
    let template = env
        .get_template("report.html")
        .map_err(ReportError::Template)?;
    template
        .render(minijinja::context! { page => page, style => STYLE })
        .map_err(ReportError::Template)
}
