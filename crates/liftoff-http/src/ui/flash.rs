//! Flash messages: what a page says above its content about the form just submitted. One type
//! for every page, drawn one way: `p.flash.ok` (`role="status"`) for success, `p.flash.error`
//! (`role="alert"`) for a refusal, and a block holding a new key's token once.

use maud::{Markup, Render, html};

/// The outcome a page shows, if any.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Flash {
    #[default]
    None,
    Ok(String),
    Error(String),
    /// A key was created: its token, shown this once.
    Token {
        name: String,
        token: String,
    },
}

impl Flash {
    pub fn ok(message: impl Into<String>) -> Self {
        Self::Ok(message.into())
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self::Error(message.into())
    }

    /// The message with an element id, for a page that points at it (`#funnel-error`).
    pub fn with_id(&self, id: &str) -> Markup {
        match self {
            Self::Ok(m) => html! { p.flash.ok id=(id) role="status" { (m) } },
            Self::Error(m) => html! { p.flash.error id=(id) role="alert" { (m) } },
            other => other.render(),
        }
    }
}

impl Render for Flash {
    fn render(&self) -> Markup {
        html! {
            @match self {
                Self::None => {},
                Self::Ok(m) => { p.flash.ok role="status" { (m) } },
                Self::Error(m) => { p.flash.error role="alert" { (m) } },
                Self::Token { name, token } => {
                    div.flash.ok role="status" {
                        p { "Key " strong { (name) } " created. Copy the token now: it is not shown again." }
                        p.secret #new-token { (token) }
                    }
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_outcome_is_drawn_once_one_way() {
        assert_eq!(Flash::None.render().into_string(), "");
        assert_eq!(
            Flash::ok("Saved.").render().into_string(),
            r#"<p class="flash ok" role="status">Saved.</p>"#
        );
        assert_eq!(
            Flash::error("<b>No</b>").render().into_string(),
            r#"<p class="flash error" role="alert">&lt;b&gt;No&lt;/b&gt;</p>"#
        );
        assert_eq!(
            Flash::error("Bad.").with_id("funnel-error").into_string(),
            r#"<p class="flash error" id="funnel-error" role="alert">Bad.</p>"#
        );
        let token = Flash::Token {
            name: "ci".into(),
            token: "lft_x".into(),
        }
        .render()
        .into_string();
        assert!(
            token.contains(r#"<p class="secret" id="new-token">lft_x</p>"#),
            "{token}"
        );
    }
}
