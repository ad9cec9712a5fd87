//! Questions: minijinja templates compiled once per campaign, rendered per item, wrapped in
//! MTurk's question XML (HTMLQuestion / ExternalQuestion / QuestionForm) or kept as HIT layout
//! parameters, and checked the way MTurk checks them (well-formed, <= 65,535 bytes).

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use turkform_model::Question;

use crate::campaign::{LayoutDef, Loc};
use crate::diagnostic::{Diagnostic, SourceFile};

pub const HTML_QUESTION_NS: &str =
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2011-11-11/HTMLQuestion.xsd";
pub const EXTERNAL_QUESTION_NS: &str = "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2006-07-14/ExternalQuestion.xsd";
pub const QUESTION_FORM_NS: &str =
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2017-11-06/QuestionForm.xsd";
/// The older QuestionForm schema MTurk still accepts.
pub const QUESTION_FORM_NS_2005: &str =
    "http://mechanicalturk.amazonaws.com/AWSMechanicalTurkDataSchemas/2005-10-01/QuestionForm.xsd";
/// MTurk's limit on the `Question` parameter.
pub const MAX_QUESTION_BYTES: usize = 65_535;
/// Query parameters MTurk appends to an ExternalURL itself.
const RESERVED_URL_PARAMS: [&str; 4] = ["assignmentId", "hitId", "turkSubmitTo", "workerId"];

/// Where a template's text came from, to place its errors.
#[derive(Debug)]
enum Origin {
    /// A template file (its display path and text).
    File { path: PathBuf, text: String },
    /// A string inside the campaign file, starting at `loc` (the opening quote).
    Inline {
        file: PathBuf,
        loc: Loc,
        text: String,
    },
}

#[derive(Debug)]
enum Kind {
    Html { frame_height: u32 },
    External { frame_height: u32 },
    QuestionForm,
    Layout { id: String, parameters: Vec<String> },
}

/// A campaign's compiled templates.
#[derive(Debug)]
pub(crate) struct Renderer {
    env: Environment<'static>,
    kind: Kind,
    origins: Vec<(String, Origin)>,
}

/// Why one item's question could not be made.
#[derive(Debug)]
pub(crate) enum RenderError {
    Template(Box<minijinja::Error>),
    /// The rendered question is not what MTurk accepts: message and hint.
    Question(String, String),
}

/// Escapes text for XML content and attribute values.
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    push_xml_escaped(&mut out, s);
    out
}

fn push_xml_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            // `&#39;` rather than `&apos;`: the same in XML, and also understood by old HTML.
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// Puts `text` into CDATA sections: a `]]>` inside would end the section early, so it is split
/// across two sections (`]]]]><![CDATA[>`), which XML parsers join back together.
pub fn push_cdata(out: &mut String, text: &str) {
    out.push_str("<![CDATA[");
    out.push_str(&text.replace("]]>", "]]]]><![CDATA[>"));
    out.push_str("]]>");
}

/// The HTMLQuestion document for rendered HTML.
pub fn html_question(html: &str, frame_height: u32) -> String {
    let mut out = String::with_capacity(html.len() + 256);
    out.push_str("<HTMLQuestion xmlns=\"");
    out.push_str(HTML_QUESTION_NS);
    out.push_str("\"><HTMLContent>");
    push_cdata(&mut out, html);
    out.push_str("</HTMLContent><FrameHeight>");
    out.push_str(&frame_height.to_string());
    out.push_str("</FrameHeight></HTMLQuestion>");
    out
}

/// The ExternalQuestion document for a URL.
pub fn external_question(url: &str, frame_height: u32) -> String {
    format!(
        "<ExternalQuestion xmlns=\"{EXTERNAL_QUESTION_NS}\"><ExternalURL>{}</ExternalURL><FrameHeight>{frame_height}</FrameHeight></ExternalQuestion>",
        xml_escape(url)
    )
}

fn check_external_url(url: &str) -> Result<(), (String, String)> {
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("https://") else {
        return Err((
            format!("external URL `{url}` is not https"),
            "MTurk only frames https:// pages; serve the task over TLS".into(),
        ));
    };
    if rest.is_empty() || rest.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err((
            format!("`{url}` is not a valid URL"),
            "write a full https:// URL without spaces; URL-encode values with `|urlencode`".into(),
        ));
    }
    if let Some((_, query)) = url.split_once('?') {
        let query = query.split('#').next().unwrap_or("");
        for pair in query.split('&') {
            let name = pair.split('=').next().unwrap_or("");
            if let Some(reserved) = RESERVED_URL_PARAMS
                .iter()
                .find(|r| r.eq_ignore_ascii_case(name))
            {
                return Err((
                    format!("external URL `{url}` sets `{reserved}`"),
                    "MTurk appends assignmentId, hitId, turkSubmitTo and workerId itself; remove it from the URL".into(),
                ));
            }
        }
    }
    Ok(())
}

/// Checks size and well-formedness; for QuestionForm also the root element.
fn check_xml(xml: &str, question_form: bool) -> Result<(), (String, String)> {
    if xml.len() > MAX_QUESTION_BYTES {
        return Err((
            format!(
                "the rendered question is {} bytes; MTurk allows at most {MAX_QUESTION_BYTES}",
                xml.len()
            ),
            "shorten the template or the item's data; large media belong behind URLs".into(),
        ));
    }
    let doc = roxmltree::Document::parse(xml).map_err(|e| {
        (
            format!("the rendered question is not well-formed XML: {e}"),
            "look at it with `turkform render CAMPAIGN ITEM`; interpolated values are escaped, so the template itself is the likely cause".into(),
        )
    })?;
    if question_form {
        let root = doc.root_element();
        let ns = root.tag_name().namespace().unwrap_or("");
        if root.tag_name().name() != "QuestionForm"
            || !(ns == QUESTION_FORM_NS || ns == QUESTION_FORM_NS_2005)
        {
            return Err((
                format!(
                    "the rendered question's root element is `{}`, not a QuestionForm",
                    root.tag_name().name()
                ),
                format!("start the template with <QuestionForm xmlns=\"{QUESTION_FORM_NS}\">"),
            ));
        }
    }
    Ok(())
}

fn xml_formatter(
    out: &mut minijinja::Output<'_>,
    state: &minijinja::State<'_, '_>,
    value: &Value,
) -> Result<(), minijinja::Error> {
    // One escaper for HTML and XML: minijinja's HTML escaper also rewrites `/` as `&#x2f;`,
    // which is correct but makes every URL in a rendered question unreadable.
    let escaping = matches!(
        state.auto_escape(),
        AutoEscape::Html | AutoEscape::Custom("xml")
    );
    if escaping && !value.is_safe() {
        let mut s = String::new();
        match value.as_str() {
            Some(v) => push_xml_escaped(&mut s, v),
            None if value.is_none() || value.is_undefined() => {}
            None => push_xml_escaped(&mut s, &value.to_string()),
        }
        out.write_str(&s).map_err(minijinja::Error::from)
    } else {
        minijinja::escape_formatter(out, state, value)
    }
}

impl Renderer {
    /// Compiles a campaign's templates once. Reads template files (returned with their bytes,
    /// for the inputs digest) and reports unreadable files and syntax errors.
    pub fn build(
        layout: &LayoutDef,
        campaign_file: &Path,
        diags: &mut Vec<Diagnostic>,
        inputs: &mut Vec<(PathBuf, Vec<u8>)>,
    ) -> Option<Renderer> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        // Block tags on their own lines leave no blank lines behind (Jinja's usual HTML setup).
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Debug mode copies template state into every error; our diagnostics place errors
        // themselves, and 100k renders should not pay for it.
        env.set_debug(false);
        env.set_formatter(xml_formatter);
        let escape = match layout {
            LayoutDef::Html { .. } => AutoEscape::Html,
            LayoutDef::QuestionForm { .. } => AutoEscape::Custom("xml"),
            LayoutDef::ExternalUrl { .. } | LayoutDef::HitLayout { .. } => AutoEscape::None,
        };
        env.set_auto_escape_callback(move |_| escape);
        let mut r = Renderer {
            env,
            kind: Kind::QuestionForm,
            origins: Vec::new(),
        };
        let mut ok = true;
        let mut add_file =
            |r: &mut Renderer, path: &Path, loc: Loc, diags: &mut Vec<Diagnostic>| -> bool {
                let text = match crate::data::read_regular_file(path) {
                    Ok(bytes) => {
                        let text = String::from_utf8(bytes.clone());
                        inputs.push((path.to_owned(), bytes));
                        match text {
                            Ok(t) => t,
                            Err(_) => {
                                diags.push(
                                    Diagnostic::new(path, 0, 0, "template is not valid UTF-8")
                                        .with_hint("save it as UTF-8"),
                                );
                                return false;
                            }
                        }
                    }
                    Err(e) => {
                        diags.push(
                            Diagnostic::new(
                                campaign_file,
                                loc.line,
                                loc.column,
                                format!("cannot read template `{}`: {e}", path.display()),
                            )
                            .with_hint("paths are relative to the campaign file"),
                        );
                        return false;
                    }
                };
                r.add(
                    path.display().to_string(),
                    text.clone(),
                    Origin::File {
                        path: path.to_owned(),
                        text,
                    },
                    diags,
                )
            };
        match layout {
            LayoutDef::Html {
                template,
                loc,
                frame_height,
            } => {
                ok &= add_file(&mut r, template, *loc, diags);
                r.kind = Kind::Html {
                    frame_height: *frame_height,
                };
            }
            LayoutDef::QuestionForm { template, loc } => {
                ok &= add_file(&mut r, template, *loc, diags);
                r.kind = Kind::QuestionForm;
            }
            LayoutDef::ExternalUrl {
                source,
                loc,
                frame_height,
            } => {
                let origin = Origin::Inline {
                    file: campaign_file.to_owned(),
                    loc: *loc,
                    text: source.clone(),
                };
                if source
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("http://")
                {
                    // Written in the campaign file, not rendered from the data: one report at
                    // its line, not one per row.
                    let (message, hint) =
                        check_external_url(source.trim()).err().unwrap_or_default();
                    diags.push(
                        Diagnostic::new(campaign_file, loc.line, loc.column, message)
                            .with_hint(hint),
                    );
                    ok = false;
                }
                ok &= r.add("external_url".into(), source.clone(), origin, diags);
                r.kind = Kind::External {
                    frame_height: *frame_height,
                };
            }
            LayoutDef::HitLayout { id, parameters } => {
                let mut names = Vec::new();
                for (name, source, loc) in parameters {
                    let origin = Origin::Inline {
                        file: campaign_file.to_owned(),
                        loc: *loc,
                        text: source.clone(),
                    };
                    ok &= r.add(format!("parameters.{name}"), source.clone(), origin, diags);
                    names.push(name.clone());
                }
                r.kind = Kind::Layout {
                    id: id.clone(),
                    parameters: names,
                };
            }
        }
        ok.then_some(r)
    }

    fn add(
        &mut self,
        name: String,
        text: String,
        origin: Origin,
        diags: &mut Vec<Diagnostic>,
    ) -> bool {
        self.origins.push((name.clone(), origin));
        match self.env.add_template_owned(name, text) {
            Ok(()) => true,
            Err(e) => {
                diags.push(self.template_diagnostic(&e, "template syntax error"));
                false
            }
        }
    }

    /// Where in its source a template error is: `(file, line, column)`.
    pub fn locate(&self, err: &minijinja::Error) -> (PathBuf, usize, usize) {
        let origin = err
            .name()
            .and_then(|n| self.origins.iter().find(|(name, _)| name == n))
            .map(|(_, o)| o);
        match origin {
            Some(Origin::File { path, text }) => {
                let src = SourceFile::new(path, text);
                match err.range() {
                    Some(range) => {
                        let (l, c) = src.position(range.start);
                        (path.clone(), l, c)
                    }
                    None => (path.clone(), err.line().unwrap_or(1), 1),
                }
            }
            Some(Origin::Inline { file, loc, .. }) => {
                // One-line strings: the template starts one character after the opening quote.
                let col = err.range().map_or(0, |r| r.start) + 1;
                (
                    file.clone(),
                    loc.line + err.line().unwrap_or(1).saturating_sub(1),
                    loc.column + col,
                )
            }
            None => (PathBuf::new(), err.line().unwrap_or(0), 0),
        }
    }

    /// The template text an error points at (`item.image_url`), when known.
    pub fn snippet(&self, err: &minijinja::Error) -> Option<String> {
        let range = err.range()?;
        let name = err.name()?;
        let (Origin::File { text, .. } | Origin::Inline { text, .. }) =
            &self.origins.iter().find(|(n, _)| n == name)?.1;
        text.get(range).map(|s| s.trim().to_owned())
    }

    fn template_diagnostic(&self, err: &minijinja::Error, what: &str) -> Diagnostic {
        let (file, line, column) = self.locate(err);
        let detail = err
            .detail()
            .map_or_else(|| err.kind().to_string(), str::to_owned);
        Diagnostic::new(file, line, column, format!("{what}: {detail}"))
    }

    /// Renders one item's question.
    pub fn render(&self, item: Value) -> Result<Question, RenderError> {
        let ctx = minijinja::context! { item => item };
        let render = |name: &str| -> Result<String, RenderError> {
            let tmpl = self
                .env
                .get_template(name)
                .map_err(|e| RenderError::Template(Box::new(e)))?;
            tmpl.render(&ctx)
                .map_err(|e| RenderError::Template(Box::new(e)))
        };
        let main = || self.origins.first().map(|(n, _)| n.as_str()).unwrap_or("");
        let q = |xml: String, form: bool| -> Result<Question, RenderError> {
            check_xml(&xml, form).map_err(|(m, h)| RenderError::Question(m, h))?;
            Ok(Question::Xml { xml })
        };
        match &self.kind {
            Kind::Html { frame_height } => q(html_question(&render(main())?, *frame_height), false),
            Kind::QuestionForm => q(render(main())?, true),
            Kind::External { frame_height } => {
                let url = render(main())?;
                let url = url.trim();
                check_external_url(url).map_err(|(m, h)| RenderError::Question(m, h))?;
                q(external_question(url, *frame_height), false)
            }
            Kind::Layout { id, parameters } => {
                let mut out = Vec::with_capacity(parameters.len());
                for name in parameters {
                    out.push((name.clone(), render(&format!("parameters.{name}"))?));
                }
                Ok(Question::Layout {
                    layout_id: id.clone(),
                    parameters: out,
                })
            }
        }
    }

    /// A diagnostic for an item whose question failed, placed on the item's row.
    pub fn item_diagnostic(
        &self,
        err: RenderError,
        data_file: &Path,
        line: usize,
        row: usize,
        key: &str,
    ) -> Diagnostic {
        let who = if key.is_empty() {
            format!("row {row}")
        } else {
            format!("row {row} (`{key}`)")
        };
        match err {
            RenderError::Question(msg, hint) => {
                Diagnostic::new(data_file, line, 1, format!("{who}: {msg}")).with_hint(hint)
            }
            RenderError::Template(e) => {
                let (file, tl, tc) = self.locate(&e);
                let place = format!("{}:{tl}:{tc}", file.display());
                if e.kind() == minijinja::ErrorKind::UndefinedError {
                    let what = self.snippet(&e).unwrap_or_else(|| "a value".into());
                    Diagnostic::new(data_file, line, 1, format!("{who}: `{what}` is undefined (used by the template at {place})"))
                        .with_hint("add the field to every row, or guard it in the template with `{% if ... is defined %}` or `|default(\"\")`")
                } else {
                    let detail = e
                        .detail()
                        .map_or_else(|| e.kind().to_string(), str::to_owned);
                    Diagnostic::new(
                        data_file,
                        line,
                        1,
                        format!("{who}: template error at {place}: {detail}"),
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdata_splits_a_closing_sequence_and_stays_well_formed() {
        let xml = html_question("<p>a]]>b</p>", 0);
        assert!(xml.contains("a]]]]><![CDATA[>b"));
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let content = doc
            .descendants()
            .find(|n| n.has_tag_name("HTMLContent"))
            .unwrap();
        let text: String = content.children().filter_map(|c| c.text()).collect();
        assert_eq!(text, "<p>a]]>b</p>");
    }

    #[test]
    fn external_urls_must_be_https_without_reserved_params() {
        assert!(check_external_url("https://x.org/t?id=1").is_ok());
        assert!(check_external_url("http://x.org/t").is_err());
        assert!(check_external_url("https://x.org/t?id=1&workerId=2").is_err());
        assert!(check_external_url("https://x.org/t?hitid=2").is_err());
        let xml = external_question("https://x.org/t?a=1&b=2", 600);
        assert!(xml.contains("a=1&amp;b=2"));
        assert!(roxmltree::Document::parse(&xml).is_ok());
    }
}
