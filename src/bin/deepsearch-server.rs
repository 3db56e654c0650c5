//! `deepsearch-server`: the pure-Rust DeepSearch HTTP server, and its terminal commands
//! (`search`, `index`). `--help` lists the flags.

use std::io::Write;
use std::process::ExitCode;

use deepsearch_stream::config::ServiceConfig;
use deepsearch_stream::deepsearch::Brain;
use deepsearch_stream::server::terminal::{self, EXIT_USAGE};
use deepsearch_stream::server::{parse_from, signal, App, CliError, Command, ServerConfig};

fn main() -> ExitCode {
    let command = match parse_from(std::env::args_os()) {
        Ok(command) => command,
        // clap prints its own usage errors and `--help` (and exits 0 or 2).
        Err(CliError::Usage(e)) => e.exit(),
        Err(CliError::Config(e)) => {
            eprintln!("deepsearch-server: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let level = match &command {
        Command::Serve(config) => config.log_level.clone(),
        // The terminal commands print their own output; the log says only what failed.
        Command::Search(_) | Command::Index(_) => "warn".to_string(),
    };
    // Dropped last, after the runtime: flushes the spans of the last searches.
    let _traces = deepsearch_stream::server::subscriber::init(&level);
    if let Command::Index(args) = command {
        return ExitCode::from(terminal::index(args));
    }
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
    match command {
        Command::Search(args) => ExitCode::from(runtime.block_on(terminal::search(args))),
        Command::Serve(config) => match runtime.block_on(serve(config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("deepsearch-server: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Index(_) => ExitCode::SUCCESS,
    }
}

async fn serve(config: ServiceConfig) -> Result<(), Box<dyn std::error::Error>> {
    let config = ServerConfig::from_service(&config)?;
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
