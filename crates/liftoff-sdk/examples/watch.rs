//! Follows one flag on a Liftoff server and prints every change.
//!
//! ```text
//! cargo run -p liftoff-sdk --example watch -- http://127.0.0.1:7070 "$INGEST_TOKEN" new-checkout [user-id]
//! ```

use std::time::Duration;

use liftoff_sdk::{Context, FlagClient};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: watch BASE_URL TOKEN FLAG [USER_ID]";
    let url = args.next().ok_or(usage)?;
    let token = args.next().ok_or(usage)?;
    let flag = args.next().ok_or(usage)?;
    let ctx = args.next().map(Context::with_user).unwrap_or_default();

    let client = FlagClient::builder(url, token)
        .refresh_interval(Duration::from_secs(15))
        .build()
        .await?;
    loop {
        let eval = client.evaluate(&flag, &ctx);
        println!(
            "{flag}: enabled={} variant={} reason={} (source {:?}, etag {})",
            eval.enabled,
            eval.variant.name,
            eval.reason,
            client.source(),
            client.etag().unwrap_or_default()
        );
        client.wait_for_update().await;
    }
}
