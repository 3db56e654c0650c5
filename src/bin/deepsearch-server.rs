//! `deepsearch-server`: the pure-Rust DeepSearch HTTP server. `--help` lists the flags.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use deepsearch_stream::deepsearch::Brain;
use deepsearch_stream::server::{signal, App, Args};

fn main() -> ExitCode {
    let args = Args::parse();
    // Dropped last, after the runtime: flushes the spans of the last searches.
    let _traces = deepsearch_stream::server::subscriber::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deepsearch-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("deepsearch-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let config = args.into_config()?;
    let app = App::from_config(&config).await?;
    if let Some(url) = app.upstream() {
        tracing::info!(upstream = url, "relaying searches to the upstream service");
    }
    let listener = tokio::net::TcpListener::bind(config.address()).await?;
    let addr = listener.local_addr()?;
    let deepsearch = app.service().deepsearch();
    let model = match deepsearch.brain() {
        Brain::Offline => "offline".to_string(),
        Brain::Llm(client) => client.config().model.clone(),
    };
    tracing::info!(engines = ?deepsearch.engine_names(), model = %model, "ready");
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "deepsearch-server listening on http://{addr}")?;
        out.flush()?;
    }
    app.serve(listener, signal(), config.shutdown_timeout)
        .await?;
    Ok(())
}
