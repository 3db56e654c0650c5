//! `deepsearch-server search` and `deepsearch-server index`: the terminal commands of
//! the Python CLI (`deepsearch-stream search`/`index`), in plain text.

use std::io::{IsTerminal, Write};
use std::path::Path;

use super::cli::{IndexArgs, SearchArgs};
use crate::deepsearch::{DeepSearch, DeepSearchError, FinalData, Message, Request, Sink};
use crate::search::local::default_cache_dir;
use crate::search::LocalEngine;

/// Redraws of the index's progress bar are at most this frequent.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Exit status of a refused command line or setup.
pub const EXIT_USAGE: u8 = 2;
/// Exit status of a search that failed, or an index of no documents.
pub const EXIT_FAILED: u8 = 1;
/// Exit status after Ctrl-C, as a shell reports SIGINT.
pub const EXIT_CANCELLED: u8 = 130;

/// Prints the messages as they come: the plan of each round, the sources it found, the
/// answer growing, then the numbered sources. Flushed at each message, so a pipe sees
/// the search live.
struct Live<W: Write + Send> {
    out: W,
    answering: bool,
}

impl<W: Write + Send> Live<W> {
    fn show(&mut self, message: &Message) -> std::io::Result<()> {
        let out = &mut self.out;
        match message {
            Message::Status(text) | Message::Progress(text) => writeln!(out, "· {text}")?,
            Message::Plan(plan) => {
                writeln!(out, "Round {} plan:", plan.round)?;
                for query in &plan.queries {
                    writeln!(out, "  - {query}")?;
                }
            }
            Message::Intermediate(round) => {
                for result in &round.results {
                    writeln!(out, "  {}:", result.query)?;
                    for doc in &result.docs {
                        writeln!(out, "    {} <{}> [{}]", doc.title, doc.url, doc.engine)?;
                    }
                    if result.docs.is_empty() {
                        writeln!(out, "    (nothing found)")?;
                    }
                }
            }
            Message::Warning(w) => writeln!(out, "  ! {}: {}", w.engine, w.message)?,
            Message::Answer(piece) => {
                if !self.answering {
                    write!(out, "\nAnswer:\n")?;
                    self.answering = true;
                }
                write!(out, "{piece}")?;
            }
            Message::Final(result) => self.sources(result)?,
        }
        self.out.flush()
    }

    fn sources(&mut self, result: &FinalData) -> std::io::Result<()> {
        let out = &mut self.out;
        if !self.answering {
            write!(out, "\nAnswer:\n{}", result.answer)?;
        }
        if result.sources.is_empty() {
            write!(out, "\n\n(no sources)\n")?;
        } else {
            write!(out, "\n\nSources:\n")?;
        }
        for source in &result.sources {
            writeln!(out, "[{}] {}\n    {}", source.id, source.title, source.url)?;
        }
        writeln!(out, "({} rounds, {} ms)", result.loops, result.elapsed_ms)
    }
}

/// The live display, or (for `--json`) nothing but the warnings on stderr.
struct Display<W: Write + Send> {
    live: Option<Live<W>>,
}

impl<W: Write + Send> Sink for Display<W> {
    async fn emit(&mut self, message: Message) -> Result<(), DeepSearchError> {
        let shown = match (&mut self.live, &message) {
            (Some(live), _) => live.show(&message),
            (None, Message::Warning(w)) => {
                eprintln!("warning: {}: {}", w.engine, w.message);
                Ok(())
            }
            (None, _) => Ok(()),
        };
        // A closed stdout (`| head`) ends the search as a client leaving would.
        shown.map_err(|_| DeepSearchError::Closed)
    }
}

/// Runs one search, printing it; returns the exit status.
pub async fn search(args: SearchArgs) -> u8 {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("deepsearch-server search: {e}");
        EXIT_USAGE
    };
    let config = &args.config;
    let llm = match config.llm().resolve() {
        Ok(llm) => llm,
        Err(e) => return fail(&e),
    };
    let req =
        Request::new(args.question.as_str()).max_loop(usize::try_from(args.max_loop).unwrap_or(0));
    if let Err(e) = req.validate() {
        return fail(&e);
    }
    let (engines, engine_config, settings) = (
        config.engines.clone(),
        config.engine_config(),
        config.settings(),
    );
    let built = tokio::task::spawn_blocking(move || {
        DeepSearch::from_config(&engines, &engine_config, llm, settings)
    })
    .await;
    let deepsearch = match built {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => return fail(&e),
        Err(e) => return fail(&e),
    };
    let mut display = Display {
        live: (!args.json).then(|| Live {
            out: std::io::stdout(),
            answering: false,
        }),
    };
    let outcome = tokio::select! {
        // Ctrl-C first: its handler is installed at its first poll, which must come
        // before the search prints anything (else SIGINT would still kill the process);
        // a handler that could not be installed leaves only the search.
        biased;
        Ok(()) = tokio::signal::ctrl_c() => {
            // Dropping the search's future drops its engine and model requests.
            eprintln!("\ndeepsearch-server search: cancelled");
            return EXIT_CANCELLED;
        }
        outcome = deepsearch.run(&req, &mut display) => outcome,
    };
    match outcome {
        Ok(result) if args.json => match serde_json::to_string_pretty(&result) {
            Ok(json) => {
                println!("{json}");
                0
            }
            Err(e) => fail(&e),
        },
        Ok(_) => 0,
        Err(e) => {
            if let Some(live) = &mut display.live {
                if live.answering {
                    println!();
                }
            }
            eprintln!("deepsearch-server search: {e} ({})", e.code());
            EXIT_FAILED
        }
    }
}

/// Why `folder` cannot be indexed, if it cannot be read.
fn unreadable(folder: &Path) -> Option<String> {
    if !folder.exists() {
        return Some("no such folder".into());
    }
    if !folder.is_dir() {
        return Some("not a folder".into());
    }
    std::fs::read_dir(folder).err().map(|e| e.to_string())
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.file_type() {
            Ok(t) if t.is_dir() => dir_size(&entry.path()),
            Ok(t) if t.is_file() => entry.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

/// Sizes as the Python CLI prints them.
fn human(bytes: u64) -> String {
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut n = bytes as f64 / 1024.0;
    for unit in ["KiB", "MiB"] {
        if n < 1024.0 {
            return format!("{n:.1} {unit}");
        }
        n /= 1024.0;
    }
    format!("{n:.1} GiB")
}

/// The bar `deepsearch-stream index` draws: redrawn in place on a terminal, else one
/// line per update.
fn progress_line(done: usize, total: usize) -> String {
    const BAR: usize = 30;
    let filled = (BAR * done).checked_div(total).unwrap_or(BAR);
    format!(
        "indexing [{}{}] {done}/{total} files",
        "#".repeat(filled),
        ".".repeat(BAR - filled)
    )
}

/// Builds or refreshes the index of `args.folder`; returns the exit status.
pub fn index(args: IndexArgs) -> u8 {
    let folder = &args.folder;
    if let Some(problem) = unreadable(folder) {
        eprintln!(
            "deepsearch-server index: cannot read {}: {problem}",
            folder.display()
        );
        return EXIT_USAGE;
    }
    let cache_dir = args
        .config
        .cache_dir
        .clone()
        .unwrap_or_else(default_cache_dir);
    let tty = std::io::stderr().is_terminal();
    let mut drawn = false;
    let mut last: Option<std::time::Instant> = None;
    let mut report = |done: usize, total: usize| {
        // A terminal needs no more than ten redraws a second; the last one always shows.
        if last.is_some_and(|t| t.elapsed() < PROGRESS_EVERY) && done != total {
            return;
        }
        last = Some(std::time::Instant::now());
        let line = progress_line(done, total);
        if tty {
            eprint!("\r{line}");
        } else {
            eprintln!("{line}");
        }
        drawn = true;
    };
    let opened = LocalEngine::open_with_progress(folder, &cache_dir, &mut report);
    if tty && drawn {
        eprintln!();
    }
    let engine = match opened {
        Ok(engine) => engine,
        Err(e) => {
            eprintln!("deepsearch-server index: {e}");
            return EXIT_USAGE;
        }
    };
    let state = if engine.was_rebuilt() {
        "built"
    } else {
        "up to date"
    };
    println!(
        "{} documents ({} passages) from {}",
        engine.num_files(),
        engine.num_passages(),
        engine.corpus_dir().display()
    );
    println!(
        "index {state}: {} ({})",
        engine.index_dir().display(),
        human(dir_size(engine.index_dir()))
    );
    if engine.num_files() == 0 {
        eprintln!(
            "deepsearch-server index: no .md, .txt or .html files in {}",
            folder.display()
        );
        return EXIT_FAILED;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_the_bar_read_as_in_the_python_cli() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(1536), "1.5 KiB");
        assert_eq!(human(3 << 20), "3.0 MiB");
        assert_eq!(
            progress_line(3, 3),
            format!("indexing [{}] 3/3 files", "#".repeat(30))
        );
        assert_eq!(
            progress_line(0, 0),
            format!("indexing [{}] 0/0 files", "#".repeat(30))
        );
        assert_eq!(
            progress_line(1, 2),
            format!("indexing [{}{}] 1/2 files", "#".repeat(15), ".".repeat(15))
        );
    }
}
