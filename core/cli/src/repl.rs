//! Where the interactive mode reads its lines: on a terminal a line editor with history
//! (kept in `~/.config/linstor/history`) and completion of commands and options from the
//! command tree (Tab); otherwise plain lines from standard input, the prompt printed as the
//! upstream client prints it.

use std::borrow::Cow;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;

use rustyline::completion::{Completer, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context, Editor, Helper};

use crate::context::out;

pub const PROMPT: &str = "LINSTOR ==> ";

/// How many lines the history keeps.
const HISTORY_LINES: usize = 1000;

/// Completes command, subcommand and option names from the command tree.
pub struct Completion {
    tree: clap::Command,
}

impl Completion {
    pub fn new(tree: clap::Command) -> Completion {
        Completion { tree }
    }

    /// The candidates for the word ending at `pos` of `line`, and where that word starts.
    pub fn candidates(&self, line: &str, pos: usize) -> (usize, Vec<String>) {
        let before = &line[..pos];
        let start = before.rfind(char::is_whitespace).map_or(0, |i| i + 1);
        let partial = &before[start..];
        let mut cmd = &self.tree;
        let mut words = before[..start].split_whitespace().peekable();
        if words.peek() == Some(&"linstor") {
            words.next();
        }
        for w in words {
            if w.starts_with('-') {
                continue;
            }
            if let Some(sub) = cmd
                .get_subcommands()
                .find(|s| s.get_name() == w || s.get_all_aliases().any(|a| a == w))
            {
                cmd = sub;
            }
        }
        let mut out: Vec<String> = if partial.starts_with('-') {
            cmd.get_arguments()
                .chain(self.tree.get_arguments().filter(|a| a.is_global_set()))
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_long().map(|l| format!("--{l}")))
                .filter(|l| l.starts_with(partial))
                .collect()
        } else {
            cmd.get_subcommands()
                .filter(|s| !s.is_hide_set())
                .map(|s| s.get_name().to_string())
                .filter(|n| n.starts_with(partial))
                .collect()
        };
        out.sort();
        out.dedup();
        (start, out)
    }
}

impl Completer for Completion {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, names) = self.candidates(line, pos);
        let pairs = names
            .into_iter()
            .map(|n| Pair {
                replacement: format!("{n} "),
                display: n,
            })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for Completion {
    type Hint = String;
}

impl Highlighter for Completion {
    fn highlight_prompt<'b, 's: 'b, 'p: 'b>(
        &'s self,
        prompt: &'p str,
        _default: bool,
    ) -> Cow<'b, str> {
        Cow::Borrowed(prompt)
    }
}

impl Validator for Completion {}
impl Helper for Completion {}

/// Where the next command line comes from.
pub enum Lines {
    Editor(Box<Editor<Completion, DefaultHistory>>, Option<PathBuf>),
    Plain,
}

fn history_file() -> Option<PathBuf> {
    let home = std::env::var_os("HOME")?;
    Some(PathBuf::from(home).join(".config/linstor/history"))
}

impl Lines {
    /// A line editor when standard input and output are a terminal, plain lines otherwise.
    pub fn new(tree: clap::Command) -> Lines {
        if !(std::io::stdin().is_terminal() && std::io::stdout().is_terminal()) {
            return Lines::Plain;
        }
        let config = rustyline::Config::builder()
            .max_history_size(HISTORY_LINES)
            .map(|b| b.auto_add_history(true).build());
        let Ok(config) = config else {
            return Lines::Plain;
        };
        let Ok(mut editor) = Editor::with_config(config) else {
            return Lines::Plain;
        };
        editor.set_helper(Some(Completion::new(tree)));
        let file = history_file();
        if let Some(f) = &file {
            let _ = editor.load_history(f);
        }
        Lines::Editor(Box::new(editor), file)
    }

    /// The next line; `None` at the end of the input (Ctrl-D).
    pub fn next(&mut self) -> Option<String> {
        match self {
            Lines::Editor(editor, file) => match editor.readline(PROMPT) {
                Ok(line) => {
                    if let Some(f) = file {
                        if let Some(dir) = f.parent() {
                            let _ = std::fs::create_dir_all(dir);
                        }
                        let _ = editor.save_history(f);
                    }
                    Some(line)
                }
                // Ctrl-C drops the line being typed, as in a shell.
                Err(rustyline::error::ReadlineError::Interrupted) => Some(String::new()),
                Err(_) => None,
            },
            Lines::Plain => {
                out(PROMPT);
                let mut line = String::new();
                match std::io::stdin().lock().read_line(&mut line) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => Some(line),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_options_complete_from_the_tree() {
        let c = Completion::new(crate::command());
        let (start, got) = c.candidates("resource-gr", 11);
        assert_eq!((start, got), (0, vec!["resource-group".to_string()]));
        let (start, got) = c.candidates("resource-group sp", 17);
        assert_eq!(start, 15);
        assert_eq!(got, vec!["spawn-resources".to_string()]);
        // Aliases lead down the tree too.
        let (_, got) = c.candidates("rg l", 4);
        assert!(got.contains(&"list".to_string()), "{got:?}");
        let (_, got) = c.candidates("resource list --no", 18);
        assert!(
            got.contains(&"--no-color".to_string()) || got.contains(&"--nodes".to_string()),
            "{got:?}"
        );
        let (_, got) = c.candidates("node list --form", 16);
        assert_eq!(got, vec!["--format".to_string()]);
    }
}
