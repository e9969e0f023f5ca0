//! Plain-text tables for the operator commands: a header row and aligned columns, no borders, so
//! the output reads well in a terminal and still splits on whitespace in a shell pipeline.
//! Cells are sanitised here because much of what is shown was chosen by agents (run ids, tool
//! names): a control character in a run id must not reach the operator's terminal.

use serde_json::Value;

/// How a column's cells line up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    Left,
    /// Numbers: right-aligned so the digits line up.
    Right,
}

/// A table built row by row and rendered once.
#[derive(Debug)]
pub struct Table {
    headers: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[(&'static str, Align)]) -> Table {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; missing cells are blank, extra cells are dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells: Vec<String> = cells.iter().map(|c| sanitize(c)).collect();
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
    }

    /// The table as lines ending in `\n`, columns two spaces apart, no trailing spaces.
    pub fn render(&self) -> String {
        let mut widths: Vec<usize> = self.headers.iter().map(|(h, _)| h.len()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.headers.iter().map(|(h, _)| (*h).to_owned()).collect();
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                let align = self.headers[i].1;
                if align == Align::Right {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
                line.push_str(cell);
                if align == Align::Left {
                    line.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

/// `name: value` lines with the values aligned, for one object shown on its own.
pub fn fields(lines: &[(&str, String)]) -> String {
    let width = lines
        .iter()
        .map(|(name, _)| name.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    for (name, value) in lines {
        let pad = width - name.chars().count();
        let line = format!("{}:{} {}", sanitize(name), " ".repeat(pad), sanitize(value));
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Replaces control characters (newlines, escape sequences) with a space.
fn sanitize(cell: &str) -> String {
    cell.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A JSON field as a cell: strings as given, numbers and booleans printed, null or absent `-`.
pub fn text(value: Option<&Value>) -> String {
    match value {
        None | Some(Value::Null) => "-".to_owned(),
        Some(Value::String(s)) if s.is_empty() => "-".to_owned(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Dollars with six decimals; the API sends at most nine, so this only rounds for display.
pub fn usd(value: Option<&Value>) -> String {
    match value.and_then(Value::as_f64) {
        Some(dollars) => format!("{dollars:.6}"),
        None => "-".to_owned(),
    }
}

/// A `{"data":[...]}` list body's items; an unexpected shape is an empty list.
pub fn items(body: &Value) -> &[Value] {
    body.get("data")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// The footer of a list that the server cut short, e.g. `showing 50 of 120 (use --limit)`.
pub fn footer(body: &Value, what: &str) -> String {
    let shown = items(body).len() as u64;
    let total = body.get("total").and_then(Value::as_u64).unwrap_or(shown);
    if shown == 0 {
        format!("no {what}\n")
    } else if total > shown {
        format!("showing {shown} of {total} {what} (use --limit / --offset)\n")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check(table: &Table, expected: &str) {
        assert_eq!(table.render(), expected);
    }

    #[test]
    fn columns_align_under_their_headers_without_trailing_spaces() {
        let mut table = Table::new(&[
            ("ID", Align::Left),
            ("COST USD", Align::Right),
            ("NAME", Align::Left),
        ]);
        table.row(vec!["a".into(), "0.500000".into(), "x".into()]);
        table.row(vec!["long-id".into(), "12.000000".into(), "y".into()]);
        check(
            &table,
            "ID        COST USD  NAME\n\
             a         0.500000  x\n\
             long-id  12.000000  y\n",
        );
    }

    #[test]
    fn control_characters_from_agents_never_reach_the_terminal() {
        let mut table = Table::new(&[("RUN", Align::Left)]);
        table.row(vec!["evil\u{1b}[2J\nrun".into()]);
        assert_eq!(table.render(), "RUN\nevil [2J run\n");
    }

    #[test]
    fn short_rows_are_padded_and_long_rows_cut() {
        let mut table = Table::new(&[("A", Align::Left), ("B", Align::Left)]);
        table.row(vec!["1".into()]);
        table.row(vec!["1".into(), "2".into(), "3".into()]);
        check(&table, "A  B\n1\n1  2\n");
    }

    #[test]
    fn money_has_six_decimals_and_missing_values_a_dash() {
        assert_eq!(usd(Some(&json!(0.000123456))), "0.000123");
        assert_eq!(usd(Some(&json!(2))), "2.000000");
        assert_eq!(usd(Some(&Value::Null)), "-");
        assert_eq!(text(None), "-");
        assert_eq!(text(Some(&json!(""))), "-");
        assert_eq!(text(Some(&json!(42))), "42");
    }

    #[test]
    fn footer_says_when_the_list_was_cut() {
        assert_eq!(
            footer(&json!({"data": [], "total": 0}), "runs"),
            "no runs\n"
        );
        assert_eq!(footer(&json!({"data": [1], "total": 1}), "runs"), "");
        assert_eq!(
            footer(&json!({"data": [1, 2], "total": 9}), "runs"),
            "showing 2 of 9 runs (use --limit / --offset)\n"
        );
    }
}
