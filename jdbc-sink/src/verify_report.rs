//! What `verify` reports: per table, rows compared, chunks and the mismatching key ranges, as
//! JSON (`--json`) or as lines of text.

use serde::Serialize;

/// The whole report (`--json` prints it as is).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    /// `equal`, `mismatch` or `error`.
    pub result: &'static str,
    pub source: String,
    pub mirror: String,
    pub tables: Vec<TableReport>,
    pub rows: u64,
    pub mismatching_rows: u64,
    pub elapsed_ms: u64,
    /// Why nothing could be verified (a connection error, no table to verify).
    pub error: Option<String>,
}

/// One table.
#[derive(Debug, Default, Serialize)]
pub struct TableReport {
    pub table: String,
    pub mirror_table: String,
    /// Source rows compared.
    pub rows: u64,
    pub chunks: u64,
    pub key: Vec<String>,
    pub compared_columns: Vec<String>,
    /// Source columns the mirror table lacks (not compared).
    pub not_in_mirror: Vec<String>,
    pub mismatching_rows: u64,
    pub mismatches: Vec<MismatchRange>,
    /// Chunks whose checksums differed at first and were re-read row by row.
    pub chunks_rechecked: u64,
    /// Rows that differed when first read and agreed when re-checked (changes in flight).
    pub rows_settled: u64,
    /// Differing rows beyond the first `--recheck-rows-max` of the table: reported as first read,
    /// without re-checks (so some may be changes in flight).
    pub rows_not_rechecked: u64,
    pub elapsed_ms: u64,
    /// Why this table could not be verified.
    pub error: Option<String>,
}

/// The differing rows of one chunk: keys in `(after, up_to]` (`None`: unbounded).
#[derive(Debug, Default, Serialize, PartialEq, Eq)]
pub struct MismatchRange {
    pub after: Option<String>,
    pub up_to: Option<String>,
    pub rows: u64,
    pub missing_in_mirror: u64,
    pub only_in_mirror: u64,
    pub different: u64,
    /// Keys of the differing rows (key columns joined by `#`), at most [`MAX_KEYS`].
    pub keys: Vec<String>,
    /// The same keys, each as its key columns' values (what `--repair` asks the source for).
    #[serde(skip)]
    pub key_values: Vec<Vec<String>>,
}

/// Most keys listed per mismatching range.
pub const MAX_KEYS: usize = 1000;

/// The report as lines of text.
pub fn text_report(r: &Report) -> String {
    let mut out = String::new();
    for t in &r.tables {
        let secs = t.elapsed_ms as f64 / 1000.0;
        match &t.error {
            Some(e) => out.push_str(&format!("ERROR    {}: could not verify: {e}\n", t.table)),
            None => {
                let verdict = if t.mismatching_rows == 0 { "EQUAL   " } else { "MISMATCH" };
                out.push_str(&format!(
                    "{verdict} {} -> {}: {} rows in {} chunks ({} re-checked, {} rows agreed later), {} mismatching rows, {secs:.2} s ({:.0} rows/s)\n",
                    t.table,
                    t.mirror_table,
                    t.rows,
                    t.chunks,
                    t.chunks_rechecked,
                    t.rows_settled,
                    t.mismatching_rows,
                    t.rows as f64 / secs.max(0.001)
                ));
            }
        }
        if t.rows_not_rechecked > 0 {
            out.push_str(&format!("  {} differing rows beyond --recheck-rows-max were not re-checked (some may be changes in flight)\n", t.rows_not_rechecked));
        }
        if !t.not_in_mirror.is_empty() {
            out.push_str(&format!("  not compared (no such mirror column): {}\n", t.not_in_mirror.join(", ")));
        }
        for m in &t.mismatches {
            let show = |b: &Option<String>, none: &str| b.clone().unwrap_or_else(|| none.to_string());
            out.push_str(&format!(
                "  keys ({}, {}]: {} rows ({} missing in mirror, {} only in mirror, {} different): {}\n",
                show(&m.after, "-inf"),
                show(&m.up_to, "+inf"),
                m.rows,
                m.missing_in_mirror,
                m.only_in_mirror,
                m.different,
                m.keys.join(", ")
            ));
        }
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("ERROR    could not verify: {e}\n"));
    }
    out.push_str(&format!(
        "verify: {} tables, {} rows, {} mismatching rows, {:.2} s: {}\n",
        r.tables.len(),
        r.rows,
        r.mismatching_rows,
        r.elapsed_ms as f64 / 1000.0,
        r.result
    ));
    out
}
