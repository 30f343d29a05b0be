-- Accounts of the two services. Change the passwords for anything but a local trial.
--
-- cdc_source reads the binlog as a replica and snapshots tables:
--   REPLICATION SLAVE         binlog dump (the replication protocol)
--   BINLOG MONITOR            SHOW BINLOG STATUS / SHOW BINARY LOGS (called REPLICATION CLIENT before 10.5)
--   REPLICATION MASTER ADMIN  SHOW SLAVE HOSTS, to refuse a server id already in use
--   SELECT                    the consistent snapshot of existing rows
-- cdc_sink writes the mirror tables and its offsets table, in database `mirror` only.
CREATE USER IF NOT EXISTS 'cdc_source'@'%' IDENTIFIED BY 'cdc_source_pw';
GRANT REPLICATION SLAVE, BINLOG MONITOR, REPLICATION MASTER ADMIN, SELECT ON *.* TO 'cdc_source'@'%';

CREATE USER IF NOT EXISTS 'cdc_sink'@'%' IDENTIFIED BY 'cdc_sink_pw';
GRANT ALL PRIVILEGES ON mirror.* TO 'cdc_sink'@'%';
FLUSH PRIVILEGES;
