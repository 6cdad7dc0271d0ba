//! Tables drawn the way the upstream client draws them: a rounded UTF-8 frame with dotted column
//! separators (`╭─╮ ┊ ╞═╡ ╰─╯`), or `+ - | =` in ASCII mode; colours per column or per cell.

use std::cmp::Ordering;

use crate::output::{color, Style};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Just {
    Left,
    Right,
}

#[derive(Debug, Clone)]
struct Column {
    name: String,
    color: Option<&'static str>,
    just: Just,
}

/// One cell: its text and, when colours are on, its own colour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cell {
    pub text: String,
    pub color: Option<&'static str>,
}

impl Cell {
    pub fn colored(text: impl Into<String>, color: Option<&'static str>) -> Cell {
        Cell {
            text: text.into(),
            color,
        }
    }
}

impl From<String> for Cell {
    fn from(text: String) -> Cell {
        Cell { text, color: None }
    }
}

impl From<&str> for Cell {
    fn from(text: &str) -> Cell {
        Cell {
            text: text.to_string(),
            color: None,
        }
    }
}

struct Glyphs {
    tl: char,
    tr: char,
    bl: char,
    br: char,
    ml: char,
    mr: char,
    dotted: char,
    straight: char,
    pipe: char,
    hr: char,
}

const UTF8: Glyphs = Glyphs {
    tl: '╭',
    tr: '╮',
    bl: '╰',
    br: '╯',
    ml: '╞',
    mr: '╡',
    dotted: '┄',
    straight: '─',
    pipe: '┊',
    hr: '═',
};

const ASCII: Glyphs = Glyphs {
    tl: '+',
    tr: '+',
    bl: '+',
    br: '+',
    ml: '|',
    mr: '|',
    dotted: '-',
    straight: '-',
    pipe: '|',
    hr: '=',
};

pub struct Table {
    style: Style,
    columns: Vec<Column>,
    rows: Vec<Vec<Cell>>,
}

impl Table {
    pub fn new(style: Style) -> Table {
        Table {
            style,
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    pub fn column(&mut self, name: &str) -> &mut Table {
        self.column_with(name, None, Just::Left)
    }

    pub fn column_with(
        &mut self,
        name: &str,
        color: Option<&'static str>,
        just: Just,
    ) -> &mut Table {
        self.columns.push(Column {
            name: name.to_string(),
            color: if self.style.color { color } else { None },
            just,
        });
        self
    }

    /// A cell in a colour, if colours are on.
    pub fn cell(&self, text: impl Into<String>, color: Option<&'static str>) -> Cell {
        Cell::colored(text, if self.style.color { color } else { None })
    }

    pub fn row(&mut self, cells: Vec<Cell>) {
        assert_eq!(
            cells.len(),
            self.columns.len(),
            "row length does not match the header"
        );
        self.rows.push(cells);
    }

    /// Sorts the rows naturally by the named columns (case-insensitive names, as `--groupby`
    /// gives them); unknown names are ignored.
    pub fn sort_by(&mut self, names: &[String]) {
        let idx: Vec<usize> = names
            .iter()
            .filter_map(|n| {
                self.columns
                    .iter()
                    .position(|c| c.name.eq_ignore_ascii_case(n))
            })
            .collect();
        if idx.is_empty() {
            return;
        }
        self.rows.sort_by(|a, b| {
            for &i in &idx {
                let o = natural_cmp(&a[i].text, &b[i].text);
                if o != Ordering::Equal {
                    return o;
                }
            }
            Ordering::Equal
        });
    }

    /// Sorts by the first column, the default grouping of the upstream list commands.
    pub fn sort_by_first(&mut self) {
        if let Some(c) = self.columns.first() {
            let name = c.name.clone();
            self.sort_by(&[name]);
        }
    }

    pub fn render(&self) -> String {
        let g = if self.style.utf8 { &UTF8 } else { &ASCII };
        let header: Vec<Cell> = self
            .columns
            .iter()
            .map(|c| Cell::from(c.name.replace('_', " ")))
            .collect();
        let mut widths = vec![0usize; self.columns.len()];
        let mut multi_line = false;
        for row in std::iter::once(&header).chain(self.rows.iter()) {
            for (i, cell) in row.iter().enumerate() {
                multi_line |= cell.text.contains('\n');
                let w = cell
                    .text
                    .lines()
                    .map(|l| l.chars().count())
                    .max()
                    .unwrap_or(0);
                widths[i] = widths[i].max(w);
            }
        }
        let inner = widths.iter().sum::<usize>() + 3 * self.columns.len() - 1;
        let rule = |l: char, m: char, r: char| -> String {
            let mut s = String::new();
            s.push(l);
            s.extend(std::iter::repeat_n(m, inner));
            s.push(r);
            s.push('\n');
            s
        };
        let mut out = rule(g.tl, g.straight, g.tr);
        out.push_str(&self.render_row(&header, &widths, g, true));
        out.push_str(&rule(g.ml, g.hr, g.mr));
        for (n, row) in self.rows.iter().enumerate() {
            out.push_str(&self.render_row(row, &widths, g, false));
            if multi_line && n + 1 < self.rows.len() {
                out.push_str(&rule(g.ml, g.dotted, g.mr));
            }
        }
        out.push_str(&rule(g.bl, g.straight, g.br));
        out
    }

    fn render_row(&self, row: &[Cell], widths: &[usize], g: &Glyphs, is_header: bool) -> String {
        let lines: Vec<Vec<&str>> = row.iter().map(|c| c.text.lines().collect()).collect();
        let height = lines.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let mut out = String::new();
        for l in 0..height {
            out.push(g.pipe);
            for (i, col) in self.columns.iter().enumerate() {
                let text = lines[i].get(l).copied().unwrap_or("");
                let pad = widths[i].saturating_sub(text.chars().count());
                let field = match col.just {
                    Just::Left => format!("{text}{}", " ".repeat(pad)),
                    Just::Right => format!("{}{text}", " ".repeat(pad)),
                };
                let paint = if is_header {
                    None
                } else {
                    row[i].color.or(col.color)
                };
                out.push(' ');
                match paint {
                    Some(c) => {
                        out.push_str(c);
                        out.push_str(&field);
                        out.push_str(color::NONE);
                    }
                    None => out.push_str(&field),
                }
                out.push(' ');
                out.push(g.pipe);
            }
            out.push('\n');
        }
        out
    }
}

/// Compares like `natsort`: runs of digits as numbers, everything else as text.
pub fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a, b);
    loop {
        match (a.is_empty(), b.is_empty()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            _ => {}
        }
        let ad = a.starts_with(|c: char| c.is_ascii_digit());
        let bd = b.starts_with(|c: char| c.is_ascii_digit());
        let split = |s: &str, digits: bool| -> usize {
            s.find(|c: char| c.is_ascii_digit() != digits)
                .unwrap_or(s.len())
        };
        let (ca, ra) = a.split_at(split(a, ad));
        let (cb, rb) = b.split_at(split(b, bd));
        let o = match (ad, bd) {
            (true, true) => {
                let na = ca.trim_start_matches('0');
                let nb = cb.trim_start_matches('0');
                na.len().cmp(&nb.len()).then_with(|| na.cmp(nb))
            }
            (true, false) => Ordering::Less,
            (false, true) => Ordering::Greater,
            (false, false) => ca.cmp(cb),
        };
        if o != Ordering::Equal {
            return o;
        }
        a = ra;
        b = rb;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(style: Style) -> Table {
        let mut t = Table::new(style);
        t.column("Node").column("NodeType").column_with(
            "State",
            Some(color::DARKGREEN),
            Just::Left,
        );
        let online = t.cell("Online", Some(color::GREEN));
        t.row(vec!["beta".into(), "SATELLITE".into(), online]);
        t.row(vec!["alpha".into(), "COMBINED".into(), "OFFLINE".into()]);
        t.sort_by_first();
        t
    }

    #[test]
    fn utf8_table() {
        let expected = "\
╭─────────────────────────────╮
┊ Node  ┊ NodeType  ┊ State   ┊
╞═════════════════════════════╡
┊ alpha ┊ COMBINED  ┊ OFFLINE ┊
┊ beta  ┊ SATELLITE ┊ Online  ┊
╰─────────────────────────────╯
";
        assert_eq!(
            small(Style {
                utf8: true,
                color: false
            })
            .render(),
            expected
        );
    }

    #[test]
    fn ascii_table() {
        let expected = "\
+-----------------------------+
| Node  | NodeType  | State   |
|=============================|
| alpha | COMBINED  | OFFLINE |
| beta  | SATELLITE | Online  |
+-----------------------------+
";
        assert_eq!(small(Style::PLAIN).render(), expected);
    }

    #[test]
    fn colors_wrap_the_padded_field() {
        let out = small(Style {
            utf8: false,
            color: true,
        })
        .render();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], "| Node  | NodeType  | State   |");
        assert_eq!(lines[3], "| alpha | COMBINED  | \x1b[0;32mOFFLINE\x1b[0m |");
        assert_eq!(lines[4], "| beta  | SATELLITE | \x1b[1;32mOnline \x1b[0m |");
    }

    #[test]
    fn multi_line_cells_and_right_justification() {
        let mut t = Table::new(Style::PLAIN);
        t.column("ResourceGroup")
            .column_with("Size", None, Just::Right);
        t.row(vec!["a".into(), "PlaceCount: 2\nx".into()]);
        t.row(vec!["b_c".into(), "1 GiB".into()]);
        let expected = "\
+-------------------------------+
| ResourceGroup |          Size |
|===============================|
| a             | PlaceCount: 2 |
|               |             x |
|---------------+---------------|
| b_c           |         1 GiB |
+-------------------------------+
";
        // Upstream draws the row separator as one dotted line without column joints.
        let expected = expected.replace(
            "|---------------+---------------|",
            "|-------------------------------|",
        );
        assert_eq!(t.render(), expected);
    }

    #[test]
    fn header_underscores_become_spaces() {
        let mut t = Table::new(Style::PLAIN);
        t.column("Next_Spawn");
        t.row(vec!["x".into()]);
        assert!(t.render().contains("| Next Spawn |"));
    }

    #[test]
    fn natural_order() {
        let mut v = vec!["node10", "node2", "node1", "alpha", "Node3"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, vec!["Node3", "alpha", "node1", "node2", "node10"]);
    }
}

/// The Key/Value table of the `list-properties` commands, sorted by key.
pub fn props_table(props: &std::collections::BTreeMap<String, String>, style: Style) -> String {
    let mut t = Table::new(style);
    t.column("Key").column("Value");
    for (k, v) in props {
        t.row(vec![k.as_str().into(), v.as_str().into()]);
    }
    t.render()
}

#[cfg(test)]
mod props_tests {
    use super::*;

    #[test]
    fn props_table_is_sorted() {
        let mut p = std::collections::BTreeMap::new();
        p.insert("StorDriver/StorPoolName".to_string(), "vg_ssd".to_string());
        p.insert("Aux/site".to_string(), "a".to_string());
        let expected = "\
+----------------------------------+
| Key                     | Value  |
|==================================|
| Aux/site                | a      |
| StorDriver/StorPoolName | vg_ssd |
+----------------------------------+
";
        assert_eq!(props_table(&p, Style::PLAIN), expected);
    }
}
