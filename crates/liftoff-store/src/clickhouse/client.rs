//! A ClickHouse client over its HTTP interface: statements in the request body, rows in and
//! out as `JSONEachRow`. The HTTP interface is what every ClickHouse release since 1.1
//! serves, so one client covers Debian's 18.16 and current releases alike.

use std::time::Duration;

use liftoff_core::store::StoreError;
use serde::de::DeserializeOwned;

/// How long one statement may take before the store reports ClickHouse unavailable.
const TIMEOUT: Duration = Duration::from_secs(60);
/// How long a mutation (`ALTER TABLE … DELETE`) may take to apply before erasure or
/// retention reports failure.
const MUTATION_TIMEOUT: Duration = Duration::from_secs(120);

/// Where a ClickHouse database is and who Liftoff is there.
#[derive(Clone)]
pub struct ClickHouse {
    http: reqwest::Client,
    /// `http://host:port/` (no path).
    base: String,
    database: String,
    user: String,
    password: Option<String>,
}

/// A `--events-url` taken apart: `http(s)://[user[:password]@]host[:port]/database`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventsUrl {
    pub base: String,
    pub database: String,
    pub user: String,
    pub password: Option<String>,
}

impl EventsUrl {
    /// Reads the URL; `password` (from `LIFTOFF_EVENTS_PASSWORD`) is used when the URL names
    /// none. The database defaults to `liftoff`.
    pub fn parse(url: &str, password: Option<&str>) -> Result<Self, String> {
        let (scheme, rest) = url
            .split_once("://")
            .filter(|(s, _)| *s == "http" || *s == "https")
            .ok_or("--events-url must be a ClickHouse HTTP URL: http://HOST:8123/DATABASE")?;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, host) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        if host.is_empty() {
            return Err("--events-url names no host: http://HOST:8123/DATABASE".into());
        }
        let (user, url_password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (user.to_owned(), Some(pass.to_owned())),
                None => (u.to_owned(), None),
            },
            None => ("default".to_owned(), None),
        };
        let database = path
            .split(['?', '#'])
            .next()
            .unwrap_or("")
            .trim_matches('/');
        let database = if database.is_empty() {
            "liftoff"
        } else {
            database
        };
        if !valid_identifier(database) {
            return Err(format!(
                "--events-url: the database name `{database}` must be letters, digits and `_` (not starting with a digit)"
            ));
        }
        Ok(Self {
            base: format!("{scheme}://{host}/"),
            database: database.to_owned(),
            user: if user.is_empty() {
                "default".into()
            } else {
                user
            },
            password: url_password.or_else(|| password.map(str::to_owned)),
        })
    }
}

/// A database or table name Liftoff writes into statements unquoted.
pub fn valid_identifier(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

/// A string as a ClickHouse literal. The HTTP interface of 18.16 has no bound parameters
/// (they came in 19.x), so every value a statement carries goes through here (strings) or is
/// a number formatted from a typed value: quotes, backslashes and control characters are
/// escaped, which leaves nothing that can end the literal.
pub fn lit(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// The literals of `items`, comma-separated.
fn lit_list<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items.into_iter().map(lit).collect::<Vec<_>>().join(", ")
}

/// `(a, b, …)` of string literals, for `IN`; `('')` when there are none, which matches no
/// stored id.
pub fn lit_set<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let list = lit_list(items);
    if list.is_empty() {
        return "('')".into();
    }
    format!("({list})")
}

/// `[a, b, …]` of string literals: an array.
pub fn lit_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    format!("[{}]", lit_list(items))
}

fn unavailable(e: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("ClickHouse: {e}"))
}

impl ClickHouse {
    pub fn new(url: EventsUrl) -> Result<Self, StoreError> {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(unavailable)?;
        Ok(Self {
            http,
            base: url.base,
            database: url.database,
            user: url.user,
            password: url.password,
        })
    }

    pub fn database(&self) -> &str {
        &self.database
    }

    fn request(&self, database: bool) -> reqwest::RequestBuilder {
        let mut params: Vec<(&str, &str)> = vec![
            // Numbers as numbers in JSON answers (18.16 quotes 64-bit integers by default).
            ("output_format_json_quote_64bit_integers", "0"),
            // Statements carry their uuids and user ids inline (no bound parameters on 18.16).
            ("max_query_size", "16777216"),
        ];
        if database {
            params.push(("database", &self.database));
        }
        self.http
            .post(&self.base)
            .query(&params)
            .basic_auth(&self.user, self.password.as_deref())
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<String, StoreError> {
        let resp = req.send().await.map_err(unavailable)?;
        let status = resp.status();
        let text = resp.text().await.map_err(unavailable)?;
        if status.is_success() {
            Ok(text)
        } else {
            Err(unavailable(format!(
                "{status}: {}",
                text.trim().chars().take(500).collect::<String>()
            )))
        }
    }

    /// Runs a statement in the database; its answer as text.
    pub async fn execute(&self, sql: &str) -> Result<String, StoreError> {
        self.send(self.request(true).body(sql.to_owned())).await
    }

    /// Runs a statement outside any database (to create it).
    pub async fn execute_outside(&self, sql: &str) -> Result<String, StoreError> {
        self.send(self.request(false).body(sql.to_owned())).await
    }

    /// The rows of a `SELECT` (written without a FORMAT clause).
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, StoreError> {
        let text = self.execute(&format!("{sql}\nFORMAT JSONEachRow")).await?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                serde_json::from_str(l)
                    .map_err(|e| StoreError::Corrupt(format!("ClickHouse row: {e}: {l}")))
            })
            .collect()
    }

    /// Calls `f` with each row of a `SELECT` as it arrives, so a large answer is never held
    /// as text all at once.
    pub async fn each_row<T: DeserializeOwned>(
        &self,
        sql: &str,
        mut f: impl FnMut(T),
    ) -> Result<(), StoreError> {
        let mut resp = self
            .request(true)
            .body(format!("{sql}\nFORMAT JSONEachRow"))
            .send()
            .await
            .map_err(unavailable)?;
        if !resp.status().is_success() {
            let status = resp.status();
            let text = resp.text().await.map_err(unavailable)?;
            return Err(unavailable(format!(
                "{status}: {}",
                text.trim().chars().take(500).collect::<String>()
            )));
        }
        let mut pending: Vec<u8> = Vec::new();
        let mut row = |line: &[u8]| -> Result<(), StoreError> {
            if line.iter().all(u8::is_ascii_whitespace) {
                return Ok(());
            }
            let value = serde_json::from_slice(line).map_err(|e| {
                StoreError::Corrupt(format!(
                    "ClickHouse row: {e}: {}",
                    String::from_utf8_lossy(&line[..line.len().min(200)])
                ))
            })?;
            f(value);
            Ok(())
        };
        while let Some(chunk) = resp.chunk().await.map_err(unavailable)? {
            pending.extend_from_slice(&chunk);
            let Some(last) = pending.iter().rposition(|b| *b == b'\n') else {
                continue;
            };
            for line in pending[..last].split(|b| *b == b'\n') {
                row(line)?;
            }
            pending.drain(..=last);
        }
        row(&pending)
    }

    /// One number from a `SELECT` of one value.
    pub async fn number(&self, sql: &str) -> Result<i64, StoreError> {
        let text = self.execute(sql).await?;
        text.trim()
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("ClickHouse answered `{}`", text.trim())))
    }

    /// Inserts rows (each a JSON object) into `table`; returns once ClickHouse acknowledged
    /// the insert, which is when the rows are on its disk.
    pub async fn insert<T: serde::Serialize>(
        &self,
        table: &str,
        rows: &[T],
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = format!("INSERT INTO {table} FORMAT JSONEachRow\n").into_bytes();
        for r in rows {
            serde_json::to_writer(&mut body, r).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            body.push(b'\n');
        }
        self.send(self.request(true).body(body)).await.map(drop)
    }

    /// `SELECT version()`.
    pub async fn version(&self) -> Result<String, StoreError> {
        Ok(self
            .execute_outside("SELECT version()")
            .await?
            .trim()
            .to_owned())
    }

    /// Waits until every mutation of `table` has been applied: ClickHouse runs
    /// `ALTER … DELETE` in the background (18.16 has no `mutations_sync`), and an erasure is
    /// only answered once the rows are gone.
    pub async fn await_mutations(&self, table: &str) -> Result<(), StoreError> {
        let started = std::time::Instant::now();
        loop {
            let pending = self
                .number(&format!(
                    "SELECT count() FROM system.mutations WHERE database = {} AND table = {} AND is_done = 0",
                    lit(&self.database),
                    lit(table)
                ))
                .await?;
            if pending == 0 {
                return Ok(());
            }
            if started.elapsed() > MUTATION_TIMEOUT {
                return Err(unavailable(format!(
                    "{pending} deletions on `{table}` still running after {} s",
                    MUTATION_TIMEOUT.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_host_database_and_credentials() {
        let u = EventsUrl::parse("http://ch:8123/analytics", None).unwrap();
        assert_eq!(u.base, "http://ch:8123/");
        assert_eq!(u.database, "analytics");
        assert_eq!(u.user, "default");
        assert_eq!(u.password, None);
        let u = EventsUrl::parse("https://bob:s3cret@ch:8443/", Some("env")).unwrap();
        assert_eq!(
            (u.user.as_str(), u.password.as_deref()),
            ("bob", Some("s3cret"))
        );
        assert_eq!(u.database, "liftoff");
        let u = EventsUrl::parse("http://bob@ch:8123/db", Some("env")).unwrap();
        assert_eq!(u.password.as_deref(), Some("env"));
        for bad in [
            "postgres://x/db",
            "http:///db",
            "ch:8123",
            "http://ch/db-1",
            "http://ch/1db",
        ] {
            assert!(EventsUrl::parse(bad, None).is_err(), "{bad}");
        }
    }

    #[test]
    fn literals_escape_everything_that_could_end_them() {
        assert_eq!(lit("a'b"), r"'a\'b'");
        assert_eq!(lit(r"a\'"), r"'a\\\''");
        assert_eq!(lit("x\ny\0"), r"'x\ny\0'");
        assert_eq!(lit("\u{1}"), r"'\x01'");
        assert_eq!(lit_set(["a", "b'"]), r"('a', 'b\'')");
        assert_eq!(lit_set([]), "('')");
        assert_eq!(lit_array(["a", "b'"]), r"['a', 'b\'']");
    }
}
