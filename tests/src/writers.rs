//! Writers of the pipeline tests: random transactions on `users` and `orders` with versions
//! that increase per row (so the order a mirror applied a row's changes in can be checked), and
//! the seeded random numbers they draw from.

use std::time::Duration;

use mysql_async::prelude::Queryable;

use crate::Stack;

/// A small seeded random number generator (SplitMix64), so a failing workload can be replayed
/// from the seed printed by the test.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next_u64() % 100 < percent
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }

    /// A string of 0..=`max` characters, some of them outside ASCII.
    pub fn text(&mut self, max: u64) -> String {
        const CHARS: &[char] = &[
            'a', 'b', 'k', 'x', 'Z', '0', '7', ' ', '_', 'é', 'ß', '한', '😀', '\'', '\\',
        ];
        (0..self.range(0, max)).map(|_| *self.pick(CHARS)).collect()
    }
}

/// An SQL string literal (quotes and backslashes escaped).
pub fn sql_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

/// How a [`Writer`] behaves.
#[derive(Debug, Clone)]
pub struct WriterPlan {
    pub seed: u64,
    /// Stop after this many statements in committed transactions (`u64::MAX`: until stopped).
    pub statements: u64,
    /// Pause after each transaction.
    pub pause: Duration,
}

/// Versions shared by all writers of a test: every write of a row sets `users.pwd` (as text) or
/// `orders.qty` to a version larger than any before, so the order in which a mirror applied the
/// changes of one row can be checked.
pub type Versions = std::sync::Arc<std::sync::atomic::AtomicU64>;

/// What a writer did: statements and transactions committed, transactions rolled back on purpose,
/// transactions lost to errors (connection lost, deadlock), retried with a new connection.
#[derive(Debug, Default, Clone, Copy)]
pub struct WriterReport {
    pub statements: u64,
    pub commits: u64,
    pub rollbacks: u64,
    pub errors: u64,
}

/// A random writer of `users` and `orders` in one database: transactions of 1–20 INSERT, UPDATE
/// and DELETE statements on rows this writer inserted (so writers do not deadlock each other),
/// about one in twenty rolled back on purpose. Errors (e.g. the server restarting) roll the
/// transaction back and the writer reconnects and goes on.
pub fn spawn_writer(
    stack: Stack,
    db: String,
    plan: WriterPlan,
    versions: Versions,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<WriterReport> {
    use std::sync::atomic::Ordering;
    tokio::spawn(async move {
        let mut rng = Rng::new(plan.seed);
        let mut report = WriterReport::default();
        let mut users: Vec<u64> = Vec::new();
        let mut orders: Vec<u64> = Vec::new();
        let mut conn: Option<mysql_async::Conn> = None;
        while report.statements < plan.statements && !stop.load(Ordering::Relaxed) {
            let c = match conn.as_mut() {
                Some(c) => c,
                None => match mysql_async::Conn::new(stack.root_opts(Some(&db))).await {
                    Ok(c) => conn.insert(c),
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                },
            };
            let mut new_users = users.clone();
            let mut new_orders = orders.clone();
            let size = rng.range(1, 20);
            let result: Result<(), mysql_async::Error> = async {
                c.query_drop("BEGIN").await?;
                for _ in 0..size {
                    let version = versions.fetch_add(1, Ordering::Relaxed) + 1;
                    let roll = rng.range(0, 99);
                    if roll < 25 || (new_users.is_empty() && roll < 60) {
                        c.query_drop(format!(
                            "INSERT INTO users(user_id, pwd, name) VALUES ({}, '{version}', {})",
                            nullable(&mut rng, 20),
                            nullable(&mut rng, 20)
                        ))
                        .await?;
                        new_users.push(c.last_insert_id().unwrap_or(0));
                    } else if roll < 60 || new_orders.is_empty() {
                        let created = match rng.range(0, 2) {
                            0 => "DEFAULT".to_string(),
                            1 => "NULL".to_string(),
                            _ => format!("'20{:02}-{:02}-{:02} {:02}:{:02}:{:02}'", rng.range(0, 37), rng.range(1, 12), rng.range(1, 28), rng.range(0, 23), rng.range(0, 59), rng.range(0, 59)),
                        };
                        c.query_drop(format!(
                            "INSERT INTO orders(product_id, qty, unit_price, total_price, user_id, order_id, created_at) \
                             VALUES ({}, {version}, {}, {}, {}, {}, {created})",
                            sql_str(&rng.text(20)),
                            rng.range(0, 100_000),
                            rng.range(0, 2_000_000_000) as i64 - 1_000_000_000,
                            sql_str(&rng.text(50)),
                            sql_str(&rng.text(50)),
                        ))
                        .await?;
                        new_orders.push(c.last_insert_id().unwrap_or(0));
                    } else if roll < 72 && !new_users.is_empty() {
                        let id = *rng.pick(&new_users);
                        c.query_drop(format!(
                            "UPDATE users SET pwd = '{version}', name = {} WHERE id = {id}",
                            nullable(&mut rng, 20)
                        ))
                        .await?;
                    } else if roll < 88 {
                        // One to three orders at once.
                        let ids: Vec<String> = (0..rng.range(1, 3)).map(|_| rng.pick(&new_orders).to_string()).collect();
                        c.query_drop(format!(
                            "UPDATE orders SET qty = {version}, unit_price = {}, total_price = {version} * {}, \
                             product_id = {} WHERE id IN ({})",
                            rng.range(0, 1000),
                            rng.range(0, 1000),
                            sql_str(&rng.text(20)),
                            ids.join(",")
                        ))
                        .await?;
                    } else if roll < 94 && !new_users.is_empty() {
                        let at = (rng.next_u64() % new_users.len() as u64) as usize;
                        let id = new_users.swap_remove(at);
                        c.query_drop(format!("DELETE FROM users WHERE id = {id}")).await?;
                    } else {
                        let at = (rng.next_u64() % new_orders.len() as u64) as usize;
                        let id = new_orders.swap_remove(at);
                        c.query_drop(format!("DELETE FROM orders WHERE id = {id}")).await?;
                    }
                }
                Ok(())
            }
            .await;
            let outcome = match result {
                Ok(()) if rng.chance(5) => c.query_drop("ROLLBACK").await.map(|_| false),
                Ok(()) => c.query_drop("COMMIT").await.map(|_| true),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(true) => {
                    report.statements += size;
                    report.commits += 1;
                    users = new_users;
                    orders = new_orders;
                }
                Ok(false) => report.rollbacks += 1,
                Err(_) => {
                    // A COMMIT that failed may still have committed; the ids it inserted are
                    // simply not touched again, and a deleted id may be deleted once more.
                    report.errors += 1;
                    if let Some(c) = conn.take() {
                        let _ = c.disconnect().await;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            if !plan.pause.is_zero() {
                tokio::time::sleep(plan.pause).await;
            }
        }
        if let Some(c) = conn.take() {
            let _ = c.disconnect().await;
        }
        report
    })
}

/// A random text literal of up to `max` characters, or NULL one time in ten.
fn nullable(rng: &mut Rng, max: u64) -> String {
    if rng.chance(10) {
        "NULL".into()
    } else {
        sql_str(&rng.text(max))
    }
}

/// Several writers with seeds derived from `seed`, sharing one version counter and stop flag.
#[derive(Debug)]
pub struct Workload {
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub versions: Versions,
    handles: Vec<tokio::task::JoinHandle<WriterReport>>,
}

impl Workload {
    /// Starts `writers` writers on database `db`, each running `plan` with its own seed.
    pub fn start(stack: &Stack, db: &str, writers: u64, plan: WriterPlan) -> Workload {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let versions = Versions::default();
        let handles = (0..writers)
            .map(|w| {
                let plan = WriterPlan {
                    seed: plan.seed.wrapping_mul(31).wrapping_add(w),
                    ..plan.clone()
                };
                spawn_writer(
                    stack.clone(),
                    db.to_string(),
                    plan,
                    versions.clone(),
                    stop.clone(),
                )
            })
            .collect();
        Workload {
            stop,
            versions,
            handles,
        }
    }

    /// Asks the writers to stop after their current transaction and waits for them.
    pub async fn stop(self) -> WriterReport {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.join().await
    }

    /// Waits for the writers to finish their plan; the sum of their reports.
    pub async fn join(self) -> WriterReport {
        let mut total = WriterReport::default();
        for h in self.handles {
            let r = h.await.expect("writer task");
            total.statements += r.statements;
            total.commits += r.commits;
            total.rollbacks += r.rollbacks;
            total.errors += r.errors;
        }
        total
    }
}

/// The seed of a random test: `CDC_TEST_SEED` when set (to replay a failure), else `default`.
pub fn seed(default: u64) -> u64 {
    std::env::var("CDC_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}
