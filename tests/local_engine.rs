//! `LocalEngine` on a corpus written into a temporary directory.

use std::fs;
use std::path::{Path, PathBuf};

use deepsearch_stream::search::{build_engine, EngineConfig, LocalEngine, SearchEngine};
use tempfile::TempDir;

/// `n` sentences of filler that mention `topic`, so sections are long and distinct.
fn prose(topic: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "Sentence {i} explains how {topic} works in everyday programs and why careful \
                 engineers think about {topic} before writing code."
            )
        })
        .collect::<Vec<_>>()
        .join(" ")
}

struct Corpus {
    _tmp: TempDir,
    root: PathBuf,
    cache: PathBuf,
}

impl Corpus {
    fn new() -> Corpus {
        let tmp = TempDir::new().unwrap();
        let root = tmp.path().join("corpus");
        let cache = tmp.path().join("cache");
        fs::create_dir_all(root.join("sub/dir")).unwrap();
        fs::create_dir_all(root.join(".hidden")).unwrap();

        let rust = format!(
            "---\ntitle: Rust Ownership\n---\n# Ownership in Rust\n\n{}\n\n## Borrowing\n\n{}\n\n\
             ## Lifetimes\n\n{}\n\n```rust\n# [derive(Debug)] is not a heading\n```\n",
            prose("ownership", 6),
            prose("borrowing", 12),
            prose("lifetimes", 12),
        );
        fs::write(root.join("rust.md"), rust).unwrap();
        fs::write(
            root.join("tea.txt"),
            "Brewing green tea: steep the leaves for two minutes in water below boiling. \
             Tea brewing is an art. Serve in a café cup.",
        )
        .unwrap();
        fs::write(
            root.join("volcano.HTML"),
            "<!DOCTYPE html><html><head><title>Volcano Facts</title>\
             <style>.lava { color: crimson }</style>\
             <script>var javascriptsecret = 1;</script></head><body>\
             <h1>Volcanoes</h1><p>Lava &amp; magma are molten rock. A volcano erupts \
             when pressure builds.</p><p>Ash clouds &lt;rise&gt; high.</p></body></html>",
        )
        .unwrap();
        fs::write(
            root.join("marked.md"),
            "<!-- url: https://example.com/docs/marked -->\n# Airships\n\nA zeppelin is a \
             rigid airship.\n",
        )
        .unwrap();
        fs::write(
            root.join("sub/dir/deep.md"),
            "# Astronomy\n\nA quasar is very bright.\n",
        )
        .unwrap();
        fs::write(root.join(".hidden/secret.md"), "hiddenword inside").unwrap();
        fs::write(root.join("notes.rs"), "// rustsourceword is not indexed").unwrap();
        Corpus {
            _tmp: tmp,
            root,
            cache,
        }
    }

    fn open(&self) -> LocalEngine {
        LocalEngine::open(&self.root, &self.cache).unwrap()
    }

    fn canonical(&self, rel: &str) -> PathBuf {
        self.root.join(rel).canonicalize().unwrap()
    }
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

#[tokio::test]
async fn ranks_the_relevant_file_first() {
    let corpus = Corpus::new();
    let engine = corpus.open();
    assert_eq!(engine.name(), "local");

    let tea = engine.search("tea brewing", 3).await.unwrap();
    assert_eq!(tea[0].url, file_url(&corpus.canonical("tea.txt")));
    assert_eq!(tea[0].title, "tea", "text files are titled by their stem");
    assert!(tea[0].score > 0.0);
    assert!(tea.windows(2).all(|w| w[0].score >= w[1].score));

    let volcano = engine.search("volcano lava", 3).await.unwrap();
    assert_eq!(volcano[0].title, "Volcano Facts");

    // Accents fold: "cafe" finds "café".
    let cafe = engine.search("cafe", 3).await.unwrap();
    assert_eq!(cafe[0].url, tea[0].url);

    assert_eq!(engine.search("tea", 1).await.unwrap().len(), 1);
    assert!(engine.search("tea", 0).await.unwrap().is_empty());
}

#[tokio::test]
async fn long_files_become_section_passages() {
    let corpus = Corpus::new();
    let engine = corpus.open();
    // rust.md splits into its three sections; the four short files stay whole.
    assert_eq!(engine.num_passages(), 7);

    let hits = engine.search("lifetimes", 5).await.unwrap();
    let top = &hits[0];
    let base = file_url(&corpus.canonical("rust.md"));
    assert_eq!(top.url, format!("{base}#lifetimes"));
    assert_eq!(top.title, "Rust Ownership — Lifetimes");
    assert!(top.content.contains("lifetimes"));
    assert!(
        !top.content.contains("borrowing"),
        "passage bleeds into another section"
    );
    assert!(top.content.contains("# [derive(Debug)] is not a heading"));
    assert!(
        top.snippet.len() <= 310,
        "snippet too long: {}",
        top.snippet.len()
    );
    assert!(top.snippet.contains("lifetimes"));

    let borrowing = engine.search("borrowing", 1).await.unwrap();
    assert_eq!(borrowing[0].url, format!("{base}#borrowing"));
    // Short files are not split and carry no anchor.
    let quasar = engine.search("quasar", 1).await.unwrap();
    assert_eq!(
        quasar[0].url,
        file_url(&corpus.canonical("sub/dir/deep.md"))
    );
    assert_eq!(quasar[0].title, "Astronomy");
}

#[tokio::test]
async fn html_text_markers_and_skipped_files() {
    let corpus = Corpus::new();
    let engine = corpus.open();

    let volcano = engine.search("magma", 1).await.unwrap();
    assert!(volcano[0].content.contains("Lava & magma are molten rock."));
    assert!(volcano[0].content.contains("Ash clouds <rise> high."));
    assert!(!volcano[0].content.contains("<p>"));
    for invisible in ["javascriptsecret", "crimson"] {
        assert!(
            engine.search(invisible, 3).await.unwrap().is_empty(),
            "{invisible} came from a script/style element"
        );
    }

    let zeppelin = engine.search("zeppelin", 1).await.unwrap();
    assert_eq!(zeppelin[0].url, "https://example.com/docs/marked");
    assert_eq!(zeppelin[0].title, "Airships");
    assert!(
        !zeppelin[0].content.contains("url:"),
        "marker leaked into content"
    );

    for absent in ["hiddenword", "rustsourceword"] {
        assert!(
            engine.search(absent, 3).await.unwrap().is_empty(),
            "{absent}"
        );
    }
}

#[tokio::test]
async fn weird_queries_never_fail() {
    let corpus = Corpus::new();
    let engine = corpus.open();
    let long = "tea ".repeat(5000);
    let queries = [
        "",
        "   ",
        "\"unterminated quote",
        "title:tea",
        "body:",
        "(tea OR",
        "AND",
        "tea AND OR NOT",
        "* ? ~ ^2",
        "+-&&||!(){}[]^\"~*?:\\/",
        "日本語のテキスト",
        "emoji 🦀 tea",
        "\u{0}\u{1}",
        "[1 TO 5}",
        long.as_str(),
    ];
    for q in queries {
        let result = engine.search(q, 5).await;
        assert!(result.is_ok(), "query {q:?} failed: {result:?}");
    }
    assert!(!engine.search("title:tea", 5).await.unwrap().is_empty());
    assert!(engine.search("+-&&||!(){}", 5).await.unwrap().is_empty());
}

#[test]
fn cache_is_reused_until_the_corpus_changes() {
    let corpus = Corpus::new();
    let first = corpus.open();
    assert!(first.was_rebuilt());
    let first_dir = first.index_dir().to_path_buf();
    assert!(first_dir.starts_with(&corpus.cache));
    drop(first);

    let again = corpus.open();
    assert!(
        !again.was_rebuilt(),
        "unchanged corpus must reuse the index"
    );
    assert_eq!(again.index_dir(), first_dir);
    assert_eq!(again.search_blocking("quasar", 1).unwrap().len(), 1);
    drop(again);

    // Modified file (size changes too, so coarse mtime clocks cannot hide it).
    fs::write(
        corpus.root.join("tea.txt"),
        "Oolong tea is partially oxidised. A different text entirely, mentioning teapots.",
    )
    .unwrap();
    let modified = corpus.open();
    assert!(modified.was_rebuilt());
    assert_ne!(modified.index_dir(), first_dir);
    assert!(
        !first_dir.exists(),
        "superseded generation should be removed"
    );
    assert_eq!(modified.search_blocking("oolong", 1).unwrap().len(), 1);
    assert!(modified.search_blocking("café", 1).unwrap().is_empty());
    drop(modified);

    fs::write(corpus.root.join("sub/new.txt"), "A brand new nebula note.").unwrap();
    let added = corpus.open();
    assert!(added.was_rebuilt());
    assert_eq!(added.search_blocking("nebula", 1).unwrap().len(), 1);
    drop(added);

    fs::remove_file(corpus.root.join("sub/dir/deep.md")).unwrap();
    let removed = corpus.open();
    assert!(removed.was_rebuilt());
    assert!(removed.search_blocking("quasar", 1).unwrap().is_empty());
    drop(removed);

    // Files the engine ignores do not invalidate the cache.
    fs::write(corpus.root.join("image.png"), [0u8; 16]).unwrap();
    assert!(!corpus.open().was_rebuilt());
}

#[test]
fn a_rebuild_reports_progress_per_file_and_a_reuse_none() {
    let corpus = Corpus::new();
    let mut calls = Vec::new();
    let built = LocalEngine::open_with_progress(&corpus.root, &corpus.cache, &mut |done, total| {
        calls.push((done, total))
    })
    .unwrap();
    // rust.md, tea.txt, volcano.HTML, marked.md, sub/dir/deep.md: not hidden, not .rs.
    assert_eq!(built.num_files(), 5);
    assert_eq!(calls, (0..=5).map(|n| (n, 5)).collect::<Vec<_>>());
    drop(built);
    let mut again = 0;
    let reused =
        LocalEngine::open_with_progress(&corpus.root, &corpus.cache, &mut |_, _| again += 1)
            .unwrap();
    assert!(!reused.was_rebuilt());
    assert_eq!((reused.num_files(), again), (5, 0));
}

#[test]
fn corrupt_cache_is_rebuilt_and_corpora_do_not_collide() {
    let corpus = Corpus::new();
    let first = corpus.open();
    let dir = first.index_dir().to_path_buf();
    drop(first);
    fs::remove_dir_all(&dir).unwrap();
    let reopened = corpus.open();
    assert!(
        reopened.was_rebuilt(),
        "missing index files must trigger a rebuild"
    );
    assert_eq!(reopened.search_blocking("zeppelin", 1).unwrap().len(), 1);

    // A second corpus sharing the cache directory gets its own slot.
    let other_root = corpus.root.parent().unwrap().join("other");
    fs::create_dir_all(&other_root).unwrap();
    fs::write(other_root.join("x.md"), "# X\n\nplatypus facts").unwrap();
    let other = LocalEngine::open(&other_root, &corpus.cache).unwrap();
    assert!(other.was_rebuilt());
    assert!(other.search_blocking("zeppelin", 1).unwrap().is_empty());
    assert!(
        !corpus.open().was_rebuilt(),
        "the first corpus cache survives"
    );
}

#[tokio::test]
async fn empty_corpus_opens_and_finds_nothing() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("empty");
    fs::create_dir_all(&root).unwrap();
    let engine = LocalEngine::open(&root, tmp.path().join("cache")).unwrap();
    assert_eq!(engine.num_passages(), 0);
    assert!(engine.search("anything", 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn registry_builds_the_local_engine() {
    let corpus = Corpus::new();
    let cfg = EngineConfig {
        corpus_dir: Some(corpus.root.clone()),
        cache_dir: Some(corpus.cache.clone()),
        ..EngineConfig::default()
    };
    let engine = build_engine("local", &cfg).unwrap();
    let hits = engine.search("quasar", 3).await.unwrap();
    assert_eq!(hits[0].title, "Astronomy");

    let missing = EngineConfig {
        corpus_dir: Some(corpus.root.join("does-not-exist")),
        ..cfg
    };
    assert!(build_engine("local", &missing).is_err());
}

#[tokio::test]
async fn without_a_corpus_the_local_engine_uses_the_exported_python_docs() {
    let tmp = TempDir::new().unwrap();
    let cache = tmp.path().join("cache");
    let cfg = EngineConfig {
        cache_dir: Some(cache.clone()),
        ..EngineConfig::default()
    };
    let err = build_engine("local", &cfg).unwrap_err().to_string();
    assert!(
        err.contains("DEEPSEARCH_CORPUS_DIR") && err.contains("python-docs"),
        "{err}"
    );
    let docs = cache.join(deepsearch_stream::search::registry::PYTHON_DOCS_DIR);
    fs::create_dir_all(&docs).unwrap();
    fs::write(
        docs.join("json.md"),
        "<!-- url: https://docs.python.org/3/library/json.html -->\n# json\n\n\
         json.dumps serializes an object to a JSON formatted str.\n",
    )
    .unwrap();
    let engine = build_engine("local", &cfg).unwrap();
    let hits = engine.search("json dumps", 3).await.unwrap();
    assert!(hits[0]
        .url
        .starts_with("https://docs.python.org/3/library/json.html"));
}

#[test]
fn a_named_symbol_ranks_its_own_section_first() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("corpus");
    fs::create_dir_all(&root).unwrap();
    // Another module's `join` uses the word in its text; `text.Str.join` only names it.
    fs::write(
        root.join("text.md"),
        format!(
            "# text\n\n## text.Str.join\n\nConcatenate any number of strings.\n\n\
             ## text.Str.split\n\n{}\n",
            prose("splitting", 40)
        ),
    )
    .unwrap();
    fs::write(
        root.join("threads.md"),
        format!(
            "# threads\n\n## threads.Thread.join\n\nWait until the thread terminates: join \
             blocks the caller.\n\n## threads.Thread.start\n\n{}\n",
            prose("starting", 40)
        ),
    )
    .unwrap();
    fs::write(
        root.join("net.md"),
        format!(
            "# net\n\n## net.queues.Queue\n\nA first-in first-out queue for coroutines.\n\n\
             ## net.Stream\n\n{}\n",
            prose("streaming bytes through a queue of queue buffers", 40)
        ),
    )
    .unwrap();
    let engine = LocalEngine::open(&root, tmp.path().join("cache")).unwrap();
    let top = |q: &str| engine.search_blocking(q, 3).unwrap()[0].title.clone();
    assert_eq!(top("What does str.join do?"), "text — text.Str.join");
    assert_eq!(
        top("What does threads.Thread.join do?"),
        "threads — threads.Thread.join"
    );
    // The package with the class, as a reader writes it, skipping the submodule; and
    // the same two words written apart.
    assert_eq!(top("What is net.Queue?"), "net — net.queues.Queue");
    assert_eq!(top("How do I make a net queue?"), "net — net.queues.Queue");
}
