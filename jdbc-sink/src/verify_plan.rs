//! What verify compares of a table: its key, the columns both sides have, and how each value is
//! rendered so that the same value hashes the same on both sides whatever the column types.

use jdbc_sink::coltype::{family_of_data_type, Family};
use jdbc_sink::config::Settings;
use jdbc_sink::ident::Ident;
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{sink_reads, topic_name, TableReport, VerifyArgs};

/// A column's type on one side, from `information_schema.COLUMNS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColType {
    pub data_type: String,
    pub column_type: String,
    pub nullable: bool,
}

impl ColType {
    pub fn new(data_type: &str, column_type: &str) -> ColType {
        ColType { data_type: data_type.to_ascii_lowercase(), column_type: column_type.to_ascii_lowercase(), nullable: true }
    }
}

/// What is compared for one table, and how.
#[derive(Debug, Clone)]
pub struct Plan {
    pub source: Ident,
    pub mirror: Ident,
    pub key: Vec<Ident>,
    /// The text whose CRC32 is a row's checksum (the same on both sides).
    pub row_text: String,
    /// The key columns rendered and joined by `#`.
    pub key_text: String,
}

/// `column` rendered as text the same way on both sides, given its type at the source and in
/// the mirror (they may differ: a widened mirror column, another precision or character set).
pub fn render(column: &Ident, src: &ColType, dst: &ColType) -> String {
    use Family as F;
    let c = column;
    let same = src.column_type == dst.column_type;
    let (f, g) = (family_of_data_type(&src.data_type), family_of_data_type(&dst.data_type));
    let special = |t: &ColType| matches!(t.data_type.as_str(), "uuid" | "inet4" | "inet6");
    if special(src) || special(dst) {
        return format!("CAST({c} AS CHAR)");
    }
    match (f, g) {
        // An integer or a date concatenates as the text CAST(… AS CHAR) gives, without the cast.
        (Some(F::Integer), Some(F::Integer)) | (Some(F::Date), Some(F::Date)) => c.to_string(),
        (Some(F::Integer | F::Decimal), Some(F::Integer | F::Decimal)) if !same => {
            format!("CAST(CAST({c} AS DECIMAL(65,30)) AS CHAR)")
        }
        (Some(F::Float), Some(F::Float)) if !same => format!("CAST(CAST({c} AS FLOAT) AS CHAR)"),
        (Some(F::Bit), Some(F::Bit)) => format!("CAST({c} + 0 AS CHAR)"),
        (Some(F::Time), Some(F::Time)) => format!("TIME_FORMAT({c}, '%H:%i:%s.%f')"),
        (Some(F::DateTime), Some(F::DateTime)) => format!("DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s.%f')"),
        // Bytes, so that text of any character set or collation concatenates.
        (Some(F::Char), Some(F::Char)) => format!("CAST(CONVERT({c} USING utf8mb4) AS BINARY)"),
        (Some(F::Binary), Some(F::Binary)) => format!("HEX({c})"),
        _ => format!("CAST({c} AS CHAR)"),
    }
}

/// The plan of one table from both sides' columns: `(name, type)` in table order, the source's
/// primary key. Columns match by name, ignoring case.
pub fn build_plan(
    source: Ident,
    mirror: Ident,
    src_columns: &[(String, ColType)],
    dst_columns: &[(String, ColType)],
    key: &[String],
    tr: &mut TableReport,
) -> Result<Plan, String> {
    let find = |name: &str| dst_columns.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, t)| t);
    let ident = |n: &str| Ident::new(n).map_err(|e| e.to_string());
    let mut rendered = Vec::new();
    let mut nulls = Vec::new();
    for (name, st) in src_columns {
        match find(name) {
            Some(dt) => {
                let c = ident(name)?;
                rendered.push(render(&c, st, dt));
                // CONCAT_WS skips NULLs; a marker per column that may hold one tells NULL from ''.
                if st.nullable || dt.nullable {
                    nulls.push(format!("ISNULL({c})"));
                }
                tr.compared_columns.push(name.clone());
            }
            None => tr.not_in_mirror.push(name.clone()),
        }
    }
    let mut key_idents = Vec::new();
    let mut key_rendered = Vec::new();
    for k in key {
        let Some((_, st)) = src_columns.iter().find(|(n, _)| n == k) else {
            return Err(format!("key column `{k}` is not among the columns of `{}`", source.as_str()));
        };
        let Some(dt) = find(k) else {
            return Err(format!(
                "mirror table `{}` has no column `{k}`, part of the source's primary key: it cannot be compared by key",
                mirror.as_str()
            ));
        };
        let c = ident(k)?;
        key_rendered.push(render(&c, st, dt));
        key_idents.push(c);
    }
    tr.key = key.to_vec();
    Ok(Plan {
        source,
        mirror,
        key: key_idents,
        row_text: match nulls.is_empty() {
            true => format!("CONCAT_WS('#', {})", rendered.join(", ")),
            false => format!("CONCAT_WS('#', {}, CONCAT({}))", rendered.join(", "), nulls.join(", ")),
        },
        key_text: format!("CONCAT_WS('#', {})", key_rendered.join(", ")),
    })
}

async fn columns(conn: &mut Conn, db: &str, table: &str) -> Result<Vec<(String, ColType)>, mysql_async::Error> {
    let rows: Vec<(String, String, String, String)> = conn
        .exec(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .await?;
    Ok(rows
        .into_iter()
        .map(|(n, d, c, null)| (n, ColType { nullable: null == "YES", ..ColType::new(&d, &c) }))
        .collect())
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn plan_table(
    src: &mut Conn,
    dst: &mut Conn,
    source_db: &str,
    mirror_db: &str,
    settings: &Settings,
    args: &VerifyArgs,
    table: &str,
    tr: &mut TableReport,
) -> Result<Plan, String> {
    let source = Ident::new(table).map_err(|e| e.to_string())?;
    let q = |e: mysql_async::Error| format!("cannot read the columns of `{table}`: {e}");
    let src_columns = columns(src, source_db, table).await.map_err(q)?;
    if src_columns.is_empty() {
        return Err(format!("table `{source_db}`.`{table}` does not exist at the source"));
    }
    let key: Vec<String> = src
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY' ORDER BY SEQ_IN_INDEX",
            (source_db, table),
        )
        .await
        .map_err(q)?;
    if key.is_empty() {
        return Err(format!(
            "table `{source_db}`.`{table}` has no primary key: verify compares chunks of primary-key ranges; add a primary key or leave the table out of --tables"
        ));
    }
    let topic = topic_name(&format!("{}{table}", args.topic_prefix));
    if !sink_reads(&settings.topics, &topic) {
        return Err(format!("the sink does not read topic `{topic}` of table `{table}` (check --topic-prefix and the sink's topics)"));
    }
    let mirror = settings.table_format.table_for(&topic).map_err(|e| e.to_string())?;
    tr.mirror_table = mirror.as_str().to_string();
    let dst_columns = columns(dst, mirror_db, mirror.as_str()).await.map_err(q)?;
    if dst_columns.is_empty() {
        return Err(format!("mirror table `{mirror_db}`.`{}` of `{table}` does not exist (yet)", mirror.as_str()));
    }
    build_plan(source, mirror, &src_columns, &dst_columns, &key, tr)
}
