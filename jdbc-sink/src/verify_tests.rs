#![allow(clippy::unwrap_used)]

use super::*;

fn id(n: &str) -> Ident {
    Ident::new(n).unwrap()
}

#[test]
fn key_ranges_are_lexicographic_and_bounded() {
    let key = [id("a"), id("b")];
    let (gt, p) = key_cmp(&key, &[Value::Int(1), Value::Int(2)], true);
    assert_eq!(gt, "((`a` > ?) OR (`a` = ? AND `b` > ?))");
    assert_eq!(p, vec![Value::Int(1), Value::Int(1), Value::Int(2)]);
    let (le, _) = key_cmp(&key, &[Value::Int(1), Value::Int(2)], false);
    assert_eq!(le, "((`a` < ?) OR (`a` = ? AND `b` <= ?))");
    let one = [id("id")];
    let range = Range { lo: Some(vec![Value::Int(10)]), hi: Some(vec![Value::Int(20)]) };
    let (w, p) = range_where(&one, &range);
    assert_eq!(w, "1 AND ((`id` > ?)) AND ((`id` <= ?))");
    assert_eq!(p, vec![Value::Int(10), Value::Int(20)]);
    assert_eq!(range_where(&one, &Range::default()).0, "1");
}

#[test]
fn values_render_alike_whatever_the_mirror_type() {
    let c = id("c");
    let t = ColType::new;
    // Another precision, scale or character set must not make equal values differ.
    assert_eq!(render(&c, &t("datetime", "datetime"), &t("datetime", "datetime(6)")), "DATE_FORMAT(`c`, '%Y-%m-%d %H:%i:%s.%f')");
    assert_eq!(render(&c, &t("timestamp", "timestamp(3)"), &t("datetime", "datetime(6)")), "DATE_FORMAT(`c`, '%Y-%m-%d %H:%i:%s.%f')");
    assert_eq!(render(&c, &t("time", "time"), &t("time", "time(6)")), "TIME_FORMAT(`c`, '%H:%i:%s.%f')");
    assert_eq!(render(&c, &t("decimal", "decimal(10,2)"), &t("decimal", "decimal(12,4)")), "CAST(CAST(`c` AS DECIMAL(65,30)) AS CHAR)");
    assert_eq!(render(&c, &t("decimal", "decimal(10,2)"), &t("decimal", "decimal(10,2)")), "CAST(`c` AS CHAR)");
    assert_eq!(render(&c, &t("int", "int(11)"), &t("bigint", "bigint(20)")), "`c`");
    assert_eq!(render(&c, &t("date", "date"), &t("date", "date")), "`c`");
    assert_eq!(render(&c, &t("int", "int(11)"), &t("decimal", "decimal(20,0)")), "CAST(CAST(`c` AS DECIMAL(65,30)) AS CHAR)");
    assert_eq!(render(&c, &t("float", "float"), &t("double", "double")), "CAST(CAST(`c` AS FLOAT) AS CHAR)");
    assert_eq!(render(&c, &t("varchar", "varchar(20)"), &t("text", "text")), "CAST(CONVERT(`c` USING utf8mb4) AS BINARY)");
    assert_eq!(render(&c, &t("blob", "blob"), &t("varbinary", "varbinary(255)")), "HEX(`c`)");
    assert_eq!(render(&c, &t("bit", "bit(1)"), &t("bit", "bit(8)")), "CAST(`c` + 0 AS CHAR)");
    assert_eq!(render(&c, &t("uuid", "uuid"), &t("uuid", "uuid")), "CAST(`c` AS CHAR)");
}

#[test]
fn plan_compares_the_columns_the_mirror_has_and_marks_nulls() {
    let t = ColType::new;
    let not_null = |d, c| ColType { nullable: false, ..t(d, c) };
    let src = vec![
        ("id".to_string(), not_null("int", "int(11)")),
        ("name".to_string(), t("varchar", "varchar(20)")),
        ("gone".to_string(), t("int", "int(11)")),
    ];
    let dst = vec![("ID".to_string(), not_null("int", "int(11)")), ("name".to_string(), t("varchar", "varchar(20)"))];
    let mut tr = TableReport::default();
    let plan = build_plan(id("users"), id("m_users"), &src, &dst, &["id".to_string()], &mut tr).unwrap();
    assert_eq!(tr.compared_columns, ["id", "name"]);
    assert_eq!(tr.not_in_mirror, ["gone"]);
    assert_eq!(
        plan.row_text,
        "CONCAT_WS('#', `id`, CAST(CONVERT(`name` USING utf8mb4) AS BINARY), CONCAT(ISNULL(`name`)))"
    );
    assert_eq!(plan.key_text, "CONCAT_WS('#', `id`)");
    let no_key = vec![("name".to_string(), t("varchar", "varchar(20)"))];
    let err = build_plan(id("users"), id("m_users"), &src, &no_key, &["id".to_string()], &mut TableReport::default()).unwrap_err();
    assert!(err.contains("has no column `id`"), "{err}");
}

#[test]
fn tables_map_to_topics_as_the_source_names_them() {
    assert_eq!(topic_name("my_topic_naïve table"), "my_topic_na_ve_table");
    let list = Topics::List(vec!["my_topic_users".into()]);
    assert!(sink_reads(&list, "my_topic_users"));
    assert!(!sink_reads(&list, "my_topic_orders"));
    let re = Topics::Regex("my_topic_.*".into());
    assert!(sink_reads(&re, "my_topic_orders"));
    assert!(!sink_reads(&re, "x_my_topic_orders"));
}

#[test]
fn mismatches_are_grouped_by_chunk_with_counts() {
    let chunks = vec![
        Range { lo: None, hi: Some(vec![Value::Int(100)]) },
        Range { lo: Some(vec![Value::Int(100)]), hi: None },
    ];
    let mut suspects = BTreeMap::new();
    let sus = |chunk, src, dst| Suspect { chunk, key: vec![], src, dst };
    suspects.insert("7".to_string(), sus(0, Some(1), Some(2)));
    suspects.insert("10".to_string(), sus(0, Some(1), None));
    suspects.insert("5000".to_string(), sus(1, None, Some(3)));
    let got: Vec<MismatchRange> = group_by_chunk(&chunks, &suspects).into_iter().map(|(_, m)| m).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0], MismatchRange {
        after: None,
        up_to: Some("100".into()),
        rows: 2,
        missing_in_mirror: 1,
        only_in_mirror: 0,
        different: 1,
        keys: vec!["7".into(), "10".into()],
        key_values: vec![vec![], vec![]],
    });
    assert_eq!((got[1].after.as_deref(), got[1].up_to.as_deref(), got[1].only_in_mirror), (Some("100"), None, 1));
}
