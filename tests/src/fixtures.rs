//! A table with every MariaDB column type and rows at the types' extremes (minimums, maximums,
//! 4-byte UTF-8, latin1, zero dates, an invalid ENUM value). The rows need a session with
//! `sql_mode = ''` (zero dates) and `time_zone = '+00:00'`. Row 4 is all NULLs:
//! `INSERT INTO every_type (id, k2) VALUES (4, 'nulls')`.

pub const EVERY_TYPE_DDL: &str = "CREATE TABLE every_type (
  id INT NOT NULL, k2 VARCHAR(10) NOT NULL,
  ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED,
  mi MEDIUMINT, miu MEDIUMINT UNSIGNED, i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
  d65 DECIMAL(65,30), d52 DECIMAL(5,2), d0 DECIMAL(10,0), f FLOAT, dbl DOUBLE,
  b1 BIT(1), b10 BIT(10), b64 BIT(64), y YEAR, dt DATE,
  t0 TIME, t3 TIME(3), t6 TIME(6), dtm DATETIME, dtm6 DATETIME(6),
  ts TIMESTAMP NULL, ts6 TIMESTAMP(6) NULL,
  c CHAR(10), c255 CHAR(255), vc VARCHAR(300), vcl VARCHAR(20) CHARACTER SET latin1,
  cl CHAR(5) CHARACTER SET latin1 COLLATE latin1_bin, vbin VARCHAR(10) COLLATE utf8mb4_bin,
  tt TINYTEXT, tx TEXT, mt MEDIUMTEXT, lt LONGTEXT,
  bn BINARY(16), vb VARBINARY(300), tb TINYBLOB, bl BLOB, mb MEDIUMBLOB, lb LONGBLOB,
  e ENUM('a','b''c','d,e'), st SET('x','y','z'), j JSON, g GEOMETRY, pt POINT,
  u UUID, i6 INET6, i4 INET4, nn INT NOT NULL DEFAULT 7,
  PRIMARY KEY (k2, id)
) CHARSET utf8mb4";

pub const EVERY_TYPE_ROWS: &[&str] = &[
    // minimums
    "(1, 'min', -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
      -99999999999999999999999999999999999.999999999999999999999999999999, -999.99, -9999999999,
      -3.40282e38, -1.7976931348623157e308, 0, 0, 0, 1901, '1000-01-01',
      '-838:59:59', '-838:59:59.000', '-838:59:59.000000', '1000-01-01 00:00:00',
      '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01', '1970-01-01 00:00:01.000001',
      '', '', '', '', '', '', '', '', '', '', x'00', '', '', '', '', '', 'a', '', '[]',
      ST_GeomFromText('POINT(0 0)'), ST_GeomFromText('POINT(-1.5 2.25)'),
      '00000000-0000-0000-0000-000000000000', '::', '0.0.0.0', 0)",
    // maximums, 4-byte UTF-8, latin1
    "(2, 'max', 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295,
      9223372036854775807, 18446744073709551615,
      99999999999999999999999999999999999.999999999999999999999999999999, 999.99, 9999999999,
      3.40282e38, 1.7976931348623157e308, 1, b'1111111111', x'FFFFFFFFFFFFFFFF', 2155, '9999-12-31',
      '838:59:59', '-00:00:00.001', '25:00:00.5', '9999-12-31 23:59:59',
      '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07', '2038-01-19 03:14:07.999999',
      'ｱ한😀 ', REPEAT('😀', 255), REPEAT('가', 300), 'café €', 'ÿ', 'Bin',
      '😀', REPEAT('x', 1000), 'mt', 'lt', x'FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF', x'00FF00',
      x'00', x'0102', x'03', x'04', 'd,e', 'x,z', '{\"a\": [1, 2.5, \"😀\", null, true]}',
      ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'), ST_GeomFromText('POINT(1 2)'),
      '6ccd780c-baba-1026-9564-5b8c656024db', '2001:db8::ff00:42:8329', '255.255.255.255', 1)",
    // zero dates and the invalid ENUM value (non-strict SQL mode)
    "(3, 'zero', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, '0000-00-00',
      '00:00:00', '00:00:00', '00:00:00', '0000-00-00 00:00:00', '2024-00-00 10:00:00.5',
      '0000-00-00 00:00:00', '0000-00-00 00:00:00', 'a', 'b', 'c', 'd', 'e', 'f',
      't', 't', 't', 't', x'61', 'v', 't', 'b', 'm', 'l', 'bogus', 'y', '0',
      NULL, NULL, NULL, NULL, NULL, 2)",
];
