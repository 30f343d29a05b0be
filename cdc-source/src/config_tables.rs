//! `table.include.list` / `table.exclude.list`: which tables are captured (see *Table patterns*
//! in the config module).

use cdc_common::ConfigError;
use regex::Regex;

/// Which tables are captured: `db.table` names matched against anchored regexes.
#[derive(Debug, Clone)]
pub struct TableFilter {
    include: Vec<Regex>,
    /// The include patterns as written, in the order of `include`.
    include_text: Vec<String>,
    exclude: Vec<Regex>,
    /// Databases the include list can match (the URL's database, plus those named in patterns).
    pub databases: Vec<String>,
}

impl TableFilter {
    pub(super) fn new(database: &str, include: (&str, &[String]), exclude: (&str, &[String])) -> Result<Self, ConfigError> {
        let mut databases = vec![database.to_string()];
        let compile = |(key, list): (&str, &[String]), dbs: &mut Vec<String>| -> Result<Vec<Regex>, ConfigError> {
            list.iter()
                .map(|p| p.trim())
                .filter(|p| !p.is_empty())
                .map(|p| {
                    // `db.table` (the dot may be escaped) is a full pattern; its database part,
                    // when a plain name, is listed for the snapshot. Anything else is a table
                    // pattern within the URL's database.
                    let cut = [p.find("\\."), p.find('.')].into_iter().flatten().min();
                    let full = match cut {
                        Some(at) => {
                            let db = &p[..at];
                            if !db.is_empty() && db.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$') && !dbs.iter().any(|d| d == db) {
                                dbs.push(db.to_string());
                            }
                            p.to_string()
                        }
                        None => format!("{}\\.{}", regex::escape(database), p),
                    };
                    Regex::new(&format!("^(?:{full})$"))
                        .map_err(|e| ConfigError::invalid(key, format!("pattern `{p}` is not a valid regex: {e}")))
                })
                .collect()
        };
        let include_text = include.1.iter().map(|p| p.trim().to_string()).filter(|p| !p.is_empty()).collect();
        let include_re = compile(include, &mut databases)?;
        let mut unused = Vec::new();
        let exclude_re = compile(exclude, &mut unused)?;
        Ok(TableFilter { include: include_re, include_text, exclude: exclude_re, databases })
    }

    /// The include patterns (as written) that match none of `tables` (`(database, table)`).
    pub fn unmatched_includes<'a>(&'a self, tables: &[(String, String)]) -> Vec<&'a str> {
        self.include
            .iter()
            .zip(&self.include_text)
            .filter(|(re, _)| !tables.iter().any(|(db, t)| re.is_match(&format!("{db}.{t}"))))
            .map(|(_, text)| text.as_str())
            .collect()
    }

    /// Whether `db.table` is captured. With no include list, every table of the URL's database is.
    pub fn matches(&self, db: &str, table: &str) -> bool {
        let full = format!("{db}.{table}");
        let included = if self.include.is_empty() {
            db == self.databases[0]
        } else {
            self.include.iter().any(|r| r.is_match(&full))
        };
        included && !self.exclude.iter().any(|r| r.is_match(&full))
    }
}
