//! A small axum app for the middleware's throughput benchmark (`bench/layer.sh`): the same
//! routes with or without `RequestReporter::layer()`, so wrk measures what the layer costs an
//! app under load. With `LIFTOFF_URL` and `LIFTOFF_TOKEN` set it reports to that Liftoff.
//!
//! Usage: `layered_app ADDR [--with-layer]`

use axum::Router;
use axum::extract::Path;
use axum::routing::get;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:7098".into());
    let with_layer = args.next().as_deref() == Some("--with-layer");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut app = Router::new().route("/", get(|| async { "ok" })).route(
            "/items/{id}",
            get(|Path(id): Path<u64>| async move { format!("item {id}") }),
        );
        let reporter = if with_layer {
            let url = std::env::var("LIFTOFF_URL")?;
            let token = std::env::var("LIFTOFF_TOKEN")?;
            let reporter = liftoff_sdk::RequestReporter::builder(url, token)
                .service("layered-app")
                .build()?;
            app = app.layer(reporter.layer());
            Some(reporter)
        } else {
            None
        };
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await?;
        if let Some(r) = reporter {
            r.shutdown().await;
            eprintln!("sent {} dropped {}", r.sent(), r.dropped());
        }
        Ok::<_, Box<dyn std::error::Error>>(())
    })?;
    Ok(())
}
