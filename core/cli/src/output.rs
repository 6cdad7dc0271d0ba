//! Everything printed that is not a table: reply blocks (SUCCESS/INFO/WARNING/ERROR with their
//! Description/Cause/Correction/Details), colours, and the machine-readable JSON.

use strata_api::ApiCallRc;

use crate::error;

/// ANSI colours as the upstream client numbers them (`ESC[<bold>;<colour>m`).
pub mod color {
    pub const DARKGREEN: &str = "\x1b[0;32m";
    pub const DARKPINK: &str = "\x1b[0;35m";
    pub const GRAY: &str = "\x1b[0;37m";
    pub const RED: &str = "\x1b[1;31m";
    pub const GREEN: &str = "\x1b[1;32m";
    pub const YELLOW: &str = "\x1b[1;33m";
    pub const BLUE: &str = "\x1b[1;34m";
    pub const NONE: &str = "\x1b[0m";
}

/// How the current command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Style {
    pub utf8: bool,
    pub color: bool,
}

impl Style {
    pub const PLAIN: Style = Style {
        utf8: false,
        color: false,
    };
}

/// The text wrapped in a colour, or the text alone when colours are off.
pub fn paint(text: &str, col: &str, enabled: bool) -> String {
    if enabled {
        format!("{col}{text}{}", color::NONE)
    } else {
        text.to_string()
    }
}

fn indented(out: &mut String, text: &str) {
    for line in text.split('\n') {
        if line.is_empty() && text.ends_with('\n') {
            continue;
        }
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
}

fn non_empty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// One reply as a block: the category line, then the message and the optional parts, each
/// indented by four spaces.
pub fn format_reply(rc: &ApiCallRc, colors: bool) -> String {
    let category = if rc.is_error() {
        paint("ERROR:", color::RED, colors)
    } else if (rc.ret_code as u64) & strata_api::rc::MASK_WARN == strata_api::rc::MASK_WARN {
        paint("WARNING:", color::YELLOW, colors)
    } else if rc.is_info() {
        paint("INFO:", color::BLUE, colors)
    } else {
        paint("SUCCESS:", color::GREEN, colors)
    };
    let mut out = format!("{category}\n");
    let message = Some(rc.message.as_str()).filter(|m| !m.is_empty());
    let cause = non_empty(&rc.cause);
    let correction = non_empty(&rc.correction);
    let details = non_empty(&rc.details);
    if message.is_some() && (cause.is_some() || correction.is_some() || details.is_some()) {
        out.push_str("Description:\n");
    }
    if let Some(m) = message {
        indented(&mut out, m);
    }
    for (title, part) in [
        ("Cause", cause),
        ("Correction", correction),
        ("Details", details),
    ] {
        if let Some(p) = part {
            out.push_str(title);
            out.push_str(":\n");
            indented(&mut out, p);
        }
    }
    if !rc.error_report_ids.is_empty() {
        out.push_str("Show reports:\n");
        indented(
            &mut out,
            &format!(
                "linstor error-reports show {}",
                rc.error_report_ids.join(" ")
            ),
        );
    }
    out
}

/// All replies, one block after the other.
pub fn format_replies(replies: &[ApiCallRc], colors: bool) -> String {
    replies.iter().map(|r| format_reply(r, colors)).collect()
}

/// The exit code a list of replies stands for: an error makes it `API_ERROR`, and so does a
/// warning with `--warn-as-error`.
pub fn replies_exit_code(replies: &[ApiCallRc], warn_as_error: bool) -> i32 {
    let bad = replies.iter().any(|r| {
        r.is_error()
            || (warn_as_error
                && (r.ret_code as u64) & strata_api::rc::MASK_WARN == strata_api::rc::MASK_WARN)
    });
    if bad {
        error::API_ERROR
    } else {
        error::OK
    }
}

/// Re-indents JSON text the way Python's `json.dumps(data, indent=2)` lays it out, keeping the
/// order of keys and the spelling of numbers and strings exactly as received.
pub fn py_json_pretty(raw: &str) -> String {
    reformat_json(raw, true)
}

/// JSON on one line with Python's default separators (`", "` and `": "`).
pub fn py_json_compact(raw: &str) -> String {
    reformat_json(raw, false)
}

fn reformat_json(raw: &str, pretty: bool) -> String {
    let chars: Vec<char> = raw.chars().collect();
    let mut out = String::with_capacity(raw.len() + raw.len() / 2);
    let mut depth: usize = 0;
    let mut i = 0;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("  ");
        }
    };
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' => {
                out.push('"');
                i += 1;
                while i < chars.len() {
                    let s = chars[i];
                    out.push(s);
                    i += 1;
                    if s == '\\' {
                        if i < chars.len() {
                            out.push(chars[i]);
                            i += 1;
                        }
                    } else if s == '"' {
                        break;
                    }
                }
                continue;
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                let mut j = i + 1;
                while j < chars.len() && chars[j].is_whitespace() {
                    j += 1;
                }
                if j < chars.len() && chars[j] == close {
                    out.push(c);
                    out.push(close);
                    i = j + 1;
                    continue;
                }
                out.push(c);
                depth += 1;
                if pretty {
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                if pretty {
                    newline(&mut out, depth);
                }
                out.push(c);
            }
            ',' => {
                out.push(',');
                if pretty {
                    newline(&mut out, depth);
                } else {
                    out.push(' ');
                }
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Joins the elements of several JSON arrays (raw text) into one array, keeping each element's
/// text as it was.
pub fn concat_json_arrays(arrays: &[String]) -> String {
    let inner: Vec<&str> = arrays
        .iter()
        .map(|a| {
            let t = a.trim();
            let t = t.strip_prefix('[').unwrap_or(t);
            let t = t.strip_suffix(']').unwrap_or(t);
            t.trim()
        })
        .filter(|t| !t.is_empty())
        .collect();
    format!("[{}]", inner.join(","))
}

/// The machine-readable form of a list answer: the answer wrapped in one more list, as the
/// upstream client prints it.
/// `json` as YAML (as it is, when it is not JSON).
pub fn yaml_of(json: &str) -> String {
    match serde_json::from_str::<serde_json::Value>(json) {
        Ok(v) => serde_yaml_ng::to_string(&v).unwrap_or_else(|_| format!("{json}\n")),
        Err(_) => format!("{}\n", json.trim_end()),
    }
}

pub fn machine_list(raw: &str) -> String {
    py_json_pretty(&format!("[{}]", raw.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn rc(ret_code: u64, message: &str) -> ApiCallRc {
        ApiCallRc {
            ret_code: ret_code as i64,
            message: message.to_string(),
            cause: None,
            details: None,
            correction: None,
            error_report_ids: vec![],
            obj_refs: BTreeMap::new(),
            created_at: None,
        }
    }

    #[test]
    fn success_reply_is_one_block() {
        let r = rc(0x013C_0001, "New node 'alpha' registered.");
        assert_eq!(
            format_reply(&r, false),
            "SUCCESS:\n    New node 'alpha' registered.\n"
        );
        assert_eq!(
            format_reply(&r, true),
            "\x1b[1;32mSUCCESS:\x1b[0m\n    New node 'alpha' registered.\n"
        );
    }

    #[test]
    fn error_reply_has_all_parts() {
        let mut r = rc(0xC000_0000_0134_012C, "Node 'x' not found.");
        r.cause = Some("The specified node 'x' could not be found in the database".into());
        r.correction = Some("Create a node with the name 'x' first.".into());
        r.details = Some("Node: x\nResource: r".into());
        r.error_report_ids = vec!["65A1-000000-000001".into()];
        let expected = "ERROR:\n\
Description:\n    Node 'x' not found.\n\
Cause:\n    The specified node 'x' could not be found in the database\n\
Correction:\n    Create a node with the name 'x' first.\n\
Details:\n    Node: x\n    Resource: r\n\
Show reports:\n    linstor error-reports show 65A1-000000-000001\n";
        assert_eq!(format_reply(&r, false), expected);
        assert_eq!(replies_exit_code(&[r], false), error::API_ERROR);
    }

    #[test]
    fn warning_and_info_categories() {
        let w = rc(0x8000_0000_033C_0BB8, "careful");
        let i = rc(0x4000_0000_0000_0001, "fyi");
        assert_eq!(format_reply(&w, false), "WARNING:\n    careful\n");
        assert_eq!(format_reply(&i, false), "INFO:\n    fyi\n");
        assert_eq!(replies_exit_code(&[w.clone(), i.clone()], false), error::OK);
        assert_eq!(replies_exit_code(&[w, i], true), error::API_ERROR);
        let ok = rc(1, "done");
        assert_eq!(
            format_replies(&[ok.clone(), ok], false),
            "SUCCESS:\n    done\nSUCCESS:\n    done\n"
        );
    }

    #[test]
    fn json_like_python() {
        let raw = r#"[{"name":"alpha","props":{},"flags":[],"net_interfaces":[{"name":"default","satellite_port":3366}],"x":1.5e3, "s":"a,b:{c}\"]"}]"#;
        let expected = r#"[
  [
    {
      "name": "alpha",
      "props": {},
      "flags": [],
      "net_interfaces": [
        {
          "name": "default",
          "satellite_port": 3366
        }
      ],
      "x": 1.5e3,
      "s": "a,b:{c}\"]"
    }
  ]
]"#;
        assert_eq!(machine_list(raw), expected);
        assert_eq!(machine_list("[]"), "[\n  []\n]");
        assert_eq!(
            py_json_compact(r#"{"version":"1.2.3","git_hash":"abc"}"#),
            r#"{"version": "1.2.3", "git_hash": "abc"}"#
        );
    }

    #[test]
    fn arrays_are_joined() {
        let joined = concat_json_arrays(&[
            r#"[{"ret_code":1}]"#.to_string(),
            "[]".to_string(),
            r#" [ {"ret_code":2} ] "#.to_string(),
        ]);
        assert_eq!(joined, r#"[{"ret_code":1},{"ret_code":2}]"#);
        assert_eq!(concat_json_arrays(&[]), "[]");
    }
}
