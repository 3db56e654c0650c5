//! `LocalEngine`: BM25 (tantivy) over a directory of markdown, text and HTML files.
//!
//! The index lives in a cache directory, one slot per canonical corpus path. A slot
//! holds a manifest (every file's relative path, size and mtime) and the index
//! generation built from exactly those files. Opening an unchanged corpus reuses the
//! generation; any change builds a fresh one beside it and then switches the manifest
//! over atomically, so a crash mid-build never leaves a manifest pointing at a
//! half-written index.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::future::BoxFuture;
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, BoostQuery, Occur, Query, TermQuery};
use tantivy::schema::{
    Field, IndexRecordOption, Schema, TantivyDocument, TextFieldIndexing, TextOptions, Value,
    STORED,
};
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::{
    AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer, TokenStream,
};
use tantivy::{Index, IndexReader, ReloadPolicy};

use super::corpus::{self, SourceFile};
use super::html::collapse_whitespace;
use super::passages::SplitOptions;
use super::stem::PluralFolder;
use super::symbols;
use super::{Document, SearchEngine, SearchError};

/// Environment variable naming the cache directory (see [`default_cache_dir`]).
pub const CACHE_DIR_ENV: &str = "DEEPSEARCH_CACHE_DIR";

/// Bump whenever schema, tokenizer or passage splitting change, so that indexes built
/// by older code are rebuilt instead of silently disagreeing with the new code.
const FORMAT_VERSION: u32 = 3;
const TOKENIZER: &str = "deepsearch_text";
const MANIFEST: &str = "manifest";
const SNIPPET_CHARS: usize = 300;
/// Title hits say more about a passage than body hits.
const TITLE_BOOST: f32 = 1.5;
/// A passage documenting a symbol the question names by its dotted name
/// (`str.join`) outranks passages that merely use its words.
const DOTTED_SYMBOL_BOOST: f32 = 3.0;
/// A symbol named by one word (`enumerate`) counts for less: many words are
/// also the last part of some symbol.
const WORD_SYMBOL_BOOST: f32 = 0.3;
/// Bounds the work one pathological query (a pasted document) can cause.
const MAX_QUERY_TERMS: usize = 64;
/// Indexing memory; tantivy needs at least 15 MB per thread.
const WRITER_MEMORY: usize = 50_000_000;

/// The default cache directory: `$DEEPSEARCH_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/deepsearch-stream`, else `~/.cache/deepsearch-stream`.
pub fn default_cache_dir() -> PathBuf {
    default_cache_dir_from(|name| std::env::var(name).ok())
}

/// [`default_cache_dir`] with the environment supplied by `lookup`, for callers that
/// keep configuration elsewhere (and for tests, which must not mutate the process env).
pub fn default_cache_dir_from(lookup: impl Fn(&str) -> Option<String>) -> PathBuf {
    let non_empty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
    if let Some(dir) = non_empty(CACHE_DIR_ENV) {
        return PathBuf::from(dir);
    }
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return Path::new(&xdg).join("deepsearch-stream");
    }
    if let Some(home) = non_empty("HOME") {
        return Path::new(&home).join(".cache").join("deepsearch-stream");
    }
    std::env::temp_dir().join("deepsearch-stream")
}

/// BM25 search over a local corpus of `.md`, `.txt` and `.html`/`.htm` files.
///
/// Each file is cut into passages (by headings, then paragraphs) and every passage is
/// one [`Document`]: title = file title plus section heading, url = the file's
/// `<!-- url: ... -->` marker or `file://` path plus `#section-slug`, content = the
/// passage, snippet = its best ~300 characters for the query.
pub struct LocalEngine {
    corpus_dir: PathBuf,
    index_dir: PathBuf,
    rebuilt: bool,
    files: usize,
    inner: Arc<Searchable>,
}

impl std::fmt::Debug for LocalEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEngine")
            .field("corpus_dir", &self.corpus_dir)
            .field("index_dir", &self.index_dir)
            .field("rebuilt", &self.rebuilt)
            .field("passages", &self.num_passages())
            .finish()
    }
}

impl LocalEngine {
    /// Opens the index for `corpus_dir` cached under `cache_dir`, (re)building it when
    /// files were added, removed or modified since it was built.
    ///
    /// Blocking (file I/O, and indexing on a rebuild): call it from
    /// `spawn_blocking` when on an async runtime.
    pub fn open(
        corpus_dir: impl AsRef<Path>,
        cache_dir: impl AsRef<Path>,
    ) -> Result<Self, SearchError> {
        Self::open_with_progress(corpus_dir, cache_dir, &mut |_, _| {})
    }

    /// [`LocalEngine::open`], calling `progress(files_done, files_total)` after each
    /// file a rebuild indexes (not at all when the cached index is reused).
    pub fn open_with_progress(
        corpus_dir: impl AsRef<Path>,
        cache_dir: impl AsRef<Path>,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<Self, SearchError> {
        let corpus_dir = corpus_dir.as_ref();
        let root = corpus_dir
            .canonicalize()
            .map_err(|e| SearchError::Index(format!("corpus {}: {e}", corpus_dir.display())))?;
        let files = corpus::scan(&root)
            .map_err(|e| SearchError::Index(format!("scanning {}: {e}", root.display())))?;
        let manifest = corpus::manifest(FORMAT_VERSION, &root, &files);
        let slot = cache_dir
            .as_ref()
            .join("local-index")
            .join(slot_name(&root));

        if let Some(generation) = current_generation(&slot, &manifest) {
            let index_dir = slot.join(&generation);
            match Searchable::open(&index_dir) {
                Ok(inner) => {
                    return Ok(LocalEngine {
                        corpus_dir: root,
                        index_dir,
                        rebuilt: false,
                        files: files.len(),
                        inner: Arc::new(inner),
                    })
                }
                Err(e) => tracing::warn!(index = %index_dir.display(), error = %e,
                    "cached index unreadable, rebuilding"),
            }
        }

        let (index_dir, inner) = rebuild(&slot, &manifest, &files, progress)?;
        Ok(LocalEngine {
            corpus_dir: root,
            index_dir,
            rebuilt: true,
            files: files.len(),
            inner: Arc::new(inner),
        })
    }

    /// [`LocalEngine::open`] with the [`default_cache_dir`].
    pub fn open_default(corpus_dir: impl AsRef<Path>) -> Result<Self, SearchError> {
        Self::open(corpus_dir, default_cache_dir())
    }

    /// True when this `open` had to build the index, false when it reused the cache.
    pub fn was_rebuilt(&self) -> bool {
        self.rebuilt
    }

    /// Canonical path of the corpus.
    pub fn corpus_dir(&self) -> &Path {
        &self.corpus_dir
    }

    /// Directory of the index generation in use; it changes on every rebuild.
    pub fn index_dir(&self) -> &Path {
        &self.index_dir
    }

    /// Number of corpus files found (unreadable ones are skipped when indexing).
    pub fn num_files(&self) -> usize {
        self.files
    }

    /// Number of indexed passages.
    pub fn num_passages(&self) -> u64 {
        self.inner.reader.searcher().num_docs()
    }

    /// Synchronous search, for callers outside an async runtime. CPU-bound.
    pub fn search_blocking(&self, query: &str, limit: usize) -> Result<Vec<Document>, SearchError> {
        self.inner.search(query, limit)
    }
}

impl SearchEngine for LocalEngine {
    fn name(&self) -> &str {
        "local"
    }

    fn search<'a>(
        &'a self,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Document>, SearchError>> {
        let inner = Arc::clone(&self.inner);
        let query = query.to_string();
        Box::pin(async move {
            // Scoring and snippet generation would stall the reactor thread.
            tokio::task::spawn_blocking(move || inner.search(&query, limit))
                .await
                .map_err(|e| SearchError::Index(format!("search task failed: {e}")))?
        })
    }
}

#[derive(Clone, Copy)]
struct Fields {
    title: Field,
    url: Field,
    body: Field,
    /// The passage's symbols and their [`symbols::aliases`], one term each.
    symbol: Field,
}

/// The parts of an opened index that searches share across threads.
struct Searchable {
    index: Index,
    reader: IndexReader,
    fields: Fields,
}

impl Searchable {
    fn open(dir: &Path) -> tantivy::Result<Searchable> {
        let index = Index::open_in_dir(dir)?;
        Self::from_index(index)
    }

    fn from_index(index: Index) -> tantivy::Result<Searchable> {
        // Tokenizers are not persisted with the index; register ours on every open.
        index.tokenizers().register(TOKENIZER, analyzer());
        let schema = index.schema();
        let fields = Fields {
            title: schema.get_field("title")?,
            url: schema.get_field("url")?,
            body: schema.get_field("body")?,
            symbol: schema.get_field("symbol")?,
        };
        // The index never changes after it is built: no reload watcher thread needed.
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::Manual)
            .try_into()?;
        Ok(Searchable {
            index,
            reader,
            fields,
        })
    }

    fn search(&self, query: &str, limit: usize) -> Result<Vec<Document>, SearchError> {
        let index_err = |e: tantivy::TantivyError| SearchError::Index(e.to_string());
        if limit == 0 {
            return Ok(Vec::new());
        }
        let Some(query) = self.build_query(query).map_err(index_err)? else {
            return Ok(Vec::new());
        };
        let searcher = self.reader.searcher();
        let hits = searcher
            .search(&query, &TopDocs::with_limit(limit).order_by_score())
            .map_err(index_err)?;
        let mut snippets =
            SnippetGenerator::create(&searcher, &query, self.fields.body).map_err(index_err)?;
        snippets.set_max_num_chars(SNIPPET_CHARS);

        hits.into_iter()
            .map(|(score, address)| {
                let doc: TantivyDocument = searcher.doc(address).map_err(index_err)?;
                let text_of = |field| {
                    doc.get_first(field)
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default()
                };
                let content = text_of(self.fields.body);
                let fragment = collapse_whitespace(snippets.snippet(&content).fragment());
                let snippet = if fragment.is_empty() {
                    leading_text(&content, SNIPPET_CHARS)
                } else {
                    fragment
                };
                Ok(Document {
                    title: text_of(self.fields.title),
                    url: text_of(self.fields.url),
                    snippet,
                    content,
                    score: f64::from(score),
                })
            })
            .collect()
    }

    /// Builds an OR of term queries from the analyzed query text. Unlike tantivy's
    /// query parser this has no syntax, so no user text (quotes, colons, `AND`,
    /// brackets) can make it fail; text without any word yields no query.
    fn build_query(&self, text: &str) -> tantivy::Result<Option<BooleanQuery>> {
        let mut analyzer = self.index.tokenizer_for_field(self.fields.body)?;
        let mut stream = analyzer.token_stream(text);
        let mut terms: Vec<String> = Vec::new();
        while stream.advance() {
            let term = &stream.token().text;
            if !terms.contains(term) {
                terms.push(term.clone());
            }
            if terms.len() == MAX_QUERY_TERMS {
                break;
            }
        }
        let (dotted, words) = symbols::query_symbols(text);
        if terms.is_empty() && dotted.is_empty() {
            return Ok(None);
        }
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::with_capacity(terms.len() * 3);
        let symbol_clauses = dotted
            .iter()
            .map(|s| (s, DOTTED_SYMBOL_BOOST))
            .chain(words.iter().map(|s| (s, WORD_SYMBOL_BOOST)))
            .take(MAX_QUERY_TERMS);
        for (name, boost) in symbol_clauses {
            let term = tantivy::Term::from_field_text(self.fields.symbol, name);
            let query = TermQuery::new(term, IndexRecordOption::WithFreqs);
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(query), boost)),
            ));
        }
        for term in &terms {
            let body = tantivy::Term::from_field_text(self.fields.body, term);
            clauses.push((
                Occur::Should,
                Box::new(TermQuery::new(body, IndexRecordOption::WithFreqs)),
            ));
            let title = tantivy::Term::from_field_text(self.fields.title, term);
            let title_query = TermQuery::new(title, IndexRecordOption::WithFreqs);
            clauses.push((
                Occur::Should,
                Box::new(BoostQuery::new(Box::new(title_query), TITLE_BOOST)),
            ));
        }
        Ok(Some(BooleanQuery::new(clauses)))
    }
}

/// Unicode-aware words, lowercased, with accents folded so `cafe` finds `café`, and
/// plurals folded so `expressions` finds `Conditional expression`.
fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .filter(PluralFolder)
        .build()
}

fn schema() -> (Schema, Fields) {
    let mut builder = Schema::builder();
    // Frequencies without positions: BM25 needs no positions and no phrase queries
    // are built, so the index stays smaller.
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(TOKENIZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
        .set_stored();
    let fields = Fields {
        title: builder.add_text_field("title", text.clone()),
        url: builder.add_text_field("url", STORED),
        body: builder.add_text_field("body", text),
        // Whole names, already lowercased: no tokenizer may cut `str.join` apart.
        symbol: builder.add_text_field(
            "symbol",
            TextOptions::default().set_indexing_options(
                TextFieldIndexing::default()
                    .set_tokenizer("raw")
                    .set_index_option(IndexRecordOption::WithFreqs),
            ),
        ),
    };
    (builder.build(), fields)
}

/// Builds a new index generation for `files`, publishes it and drops the old ones.
fn rebuild(
    slot: &Path,
    manifest: &str,
    files: &[SourceFile],
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(PathBuf, Searchable), SearchError> {
    let io_err = |what: &str, e: std::io::Error| SearchError::Index(format!("{what}: {e}"));
    let index_err = |e: tantivy::TantivyError| SearchError::Index(e.to_string());

    let generation = new_generation_name();
    let dir = slot.join(&generation);
    std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir.display().to_string(), e))?;

    let (schema, fields) = schema();
    let index = Index::create_in_dir(&dir, schema).map_err(index_err)?;
    index.tokenizers().register(TOKENIZER, analyzer());
    // One thread: indexing shares a small machine with whatever serves queries.
    let mut writer = index
        .writer_with_num_threads::<TantivyDocument>(1, WRITER_MEMORY)
        .map_err(index_err)?;
    let opts = SplitOptions::default();
    let mut passages = 0usize;
    for (done, file) in files.iter().enumerate() {
        progress(done, files.len());
        let loaded = match corpus::load(file, opts) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::warn!(file = %file.abs.display(), error = %e, "skipping unreadable file");
                continue;
            }
        };
        for p in loaded {
            let mut doc = TantivyDocument::default();
            doc.add_text(fields.title, &p.title);
            doc.add_text(fields.url, &p.url);
            doc.add_text(fields.body, &p.text);
            for symbol in &p.symbols {
                for alias in symbols::aliases(symbol) {
                    doc.add_text(fields.symbol, &alias);
                }
            }
            writer.add_document(doc).map_err(index_err)?;
            passages += 1;
        }
    }
    progress(files.len(), files.len());
    writer.commit().map_err(index_err)?;
    writer.wait_merging_threads().map_err(index_err)?;
    let searchable = Searchable::from_index(index).map_err(index_err)?;

    write_manifest(slot, &generation, manifest).map_err(|e| io_err("writing manifest", e))?;
    remove_stale_generations(slot, &generation);
    tracing::info!(index = %dir.display(), files = files.len(), passages, "built local index");
    Ok((dir, searchable))
}

/// The generation recorded for exactly this manifest, if any.
fn current_generation(slot: &Path, manifest: &str) -> Option<String> {
    let stored = std::fs::read_to_string(slot.join(MANIFEST)).ok()?;
    let (first, rest) = stored.split_once('\n')?;
    let generation = first.strip_prefix("generation ")?;
    (rest == manifest && is_generation_name(generation)).then(|| generation.to_string())
}

fn write_manifest(slot: &Path, generation: &str, manifest: &str) -> std::io::Result<()> {
    let tmp = slot.join(format!("{MANIFEST}.tmp-{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        write!(f, "generation {generation}\n{manifest}")?;
        f.sync_all()?;
    }
    // rename is atomic: readers see the old manifest or the new one, never a mix.
    std::fs::rename(&tmp, slot.join(MANIFEST))
}

/// Removes superseded generations. The one the manifest names right now is kept
/// too: another opener of the same corpus may have published it after we did.
fn remove_stale_generations(slot: &Path, keep: &str) {
    let published = std::fs::read_to_string(slot.join(MANIFEST))
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.strip_prefix("generation "))
                .map(str::to_string)
        });
    let Ok(entries) = std::fs::read_dir(slot) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_generation_name(&name) && name != keep && Some(&name) != published.as_ref() {
            if let Err(e) = std::fs::remove_dir_all(entry.path()) {
                tracing::debug!(dir = %entry.path().display(), error = %e, "could not remove old index");
            }
        }
    }
}

fn new_generation_name() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("gen-{nanos:x}-{}", std::process::id())
}

fn is_generation_name(name: &str) -> bool {
    name.starts_with("gen-") && !name.contains(['/', '\\']) && !name.contains("..")
}

/// A readable, collision-resistant directory name for a corpus path.
fn slot_name(root: &Path) -> String {
    let base: String = root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{base}-{:016x}", fnv1a(root.as_os_str().as_encoded_bytes()))
}

/// FNV-1a: stable across Rust releases, unlike `DefaultHasher`, which matters for a
/// name persisted on disk.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, b| {
        (hash ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The first `max` bytes of `text` (whitespace collapsed), cut at a word boundary.
fn leading_text(text: &str, max: usize) -> String {
    let flat = collapse_whitespace(text);
    if flat.len() <= max {
        return flat;
    }
    let mut end = max;
    while !flat.is_char_boundary(end) {
        end -= 1;
    }
    let cut = flat[..end].rfind(' ').filter(|p| *p > 0).unwrap_or(end);
    format!("{}…", &flat[..cut])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leading_text_cuts_on_words_and_char_boundaries() {
        assert_eq!(leading_text("a  b\nc", 10), "a b c");
        assert_eq!(leading_text("alpha beta gamma", 12), "alpha beta…");
        assert_eq!(leading_text("ééééé", 3), "é…");
    }

    #[test]
    fn slot_names_are_stable_and_distinct() {
        let a = slot_name(Path::new("/data/my docs"));
        assert_eq!(a, slot_name(Path::new("/data/my docs")));
        assert!(a.starts_with("my_docs-"));
        assert_ne!(a, slot_name(Path::new("/other/my docs")));
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
