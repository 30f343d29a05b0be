-- Source database with the tutorial's tables, and the database the sink keeps its mirror tables in.
CREATE DATABASE IF NOT EXISTS mydb CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;
CREATE DATABASE IF NOT EXISTS mirror CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci;

USE mydb;

create table if not exists users(id int auto_increment primary key, user_id varchar(20), pwd varchar(20), name varchar(20), created_at datetime default NOW());
create table if not exists orders(id int auto_increment primary key, product_id varchar(20) not null, qty int default 0, unit_price int default 0, total_price int default 0, user_id varchar(50) not null, order_id varchar(50) not null, created_at datetime default NOW());
