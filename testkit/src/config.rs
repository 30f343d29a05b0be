//! The part of a `cdc-source` config every test and bench run writes the same way.

use crate::Stack;

/// Who a source is and where it writes.
#[derive(Debug, Clone, Copy)]
pub struct SourceNames<'a> {
    pub name: &'a str,
    pub database: &'a str,
    pub server_id: u32,
    pub topic_prefix: &'a str,
    pub offsets_topic: &'a str,
    /// `avro` or `json`.
    pub format: &'a str,
}

/// The first lines of a TOML `cdc-source` config on `stack`: name, the connection as the
/// replication account, server id, topic prefix, offsets topic, format and the registry. The
/// caller appends its own keys and the `[kafka]` table.
pub fn source_config_head(stack: &Stack, s: &SourceNames<'_>) -> String {
    format!(
        r#"name = "{name}"
"connection.url" = "jdbc:mysql://{host}:{port}/{db}"
"connection.user" = "{user}"
"connection.password" = "{pw}"
"server.id" = {sid}
"topic.prefix" = "{prefix}"
"offsets.topic" = "{offsets}"
format = "{format}"
"schema.registry.url" = "{registry}"
"#,
        name = s.name,
        host = stack.mariadb_host,
        port = stack.mariadb_port,
        db = s.database,
        user = stack.source_user,
        pw = stack.source_password,
        sid = s.server_id,
        prefix = s.topic_prefix,
        offsets = s.offsets_topic,
        format = s.format,
        registry = stack.registry_url,
    )
}
