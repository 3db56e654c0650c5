//! Reading a corpus directory: which files count, how each becomes passages, and the
//! manifest that decides whether a cached index is still valid.

use std::io;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use reqwest::Url;

use super::html;
use super::passages::{self, SplitOptions};
use super::symbols;

/// Files larger than this are skipped: they are almost always generated dumps, and
/// reading them whole would dominate indexing time and memory.
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// A file of the corpus as seen by the scan.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    /// Path relative to the corpus root.
    pub rel: PathBuf,
    pub abs: PathBuf,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch (0 when unknown).
    pub mtime_ns: u128,
    pub kind: FileKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Markdown,
    Text,
    Html,
}

impl FileKind {
    fn from_path(path: &Path) -> Option<FileKind> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "md" | "markdown" => Some(FileKind::Markdown),
            "txt" => Some(FileKind::Text),
            "html" | "htm" => Some(FileKind::Html),
            _ => None,
        }
    }
}

/// A passage ready to be indexed.
#[derive(Debug, Clone)]
pub(crate) struct CorpusPassage {
    pub title: String,
    pub url: String,
    pub text: String,
    /// Dotted names the passage documents (see [`symbols::passage_symbols`]).
    pub symbols: Vec<String>,
}

/// Lists the indexable files under `root` (recursively), sorted by relative path.
///
/// Hidden entries (`.git`, `.DS_Store`, ...) are skipped, and so are symlinked
/// directories, which could otherwise loop; symlinked files are followed.
pub(crate) fn scan(root: &Path) -> io::Result<Vec<SourceFile>> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            // The root must be readable; a single unreadable subdirectory must not
            // make the whole corpus unusable.
            Err(e) if dir == root => return Err(e),
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "skipping unreadable directory");
                continue;
            }
        };
        for entry in entries {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let file_type = entry.file_type()?;
            if file_type.is_dir() {
                pending.push(path);
                continue;
            }
            let Some(kind) = FileKind::from_path(&path) else {
                continue;
            };
            // Follows symlinks, so a link to a file is indexed like the file.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            if !meta.is_file() {
                continue;
            }
            if meta.len() > MAX_FILE_BYTES {
                tracing::warn!(file = %path.display(), bytes = meta.len(), "skipping oversized file");
                continue;
            }
            let mtime_ns = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
            files.push(SourceFile {
                rel,
                abs: path,
                size: meta.len(),
                mtime_ns,
                kind,
            });
        }
    }
    files.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(files)
}

/// The fingerprint stored beside an index: one line per file with its relative path,
/// size and mtime, under a header naming the format and the corpus. Any difference
/// (a file added, removed, touched, or a new splitting format) forces a rebuild.
pub(crate) fn manifest(format_version: u32, root: &Path, files: &[SourceFile]) -> String {
    let mut out = format!(
        "deepsearch-stream local index v{format_version}\ncorpus {:?}\n",
        root
    );
    for f in files {
        // Debug formatting escapes tabs and newlines that may appear in file names.
        out.push_str(&format!("{:?}\t{}\t{}\n", f.rel, f.size, f.mtime_ns));
    }
    out
}

/// Reads one file and cuts it into passages with titles and URLs.
pub(crate) fn load(file: &SourceFile, opts: SplitOptions) -> io::Result<Vec<CorpusPassage>> {
    let bytes = std::fs::read(&file.abs)?;
    let raw = String::from_utf8_lossy(&bytes);
    let raw = raw.strip_prefix('\u{feff}').unwrap_or(&raw);
    let (marker, raw) = url_marker(raw);

    let stem = file
        .abs
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (title, text) = match file.kind {
        FileKind::Markdown => {
            let (fm_title, body) = passages::front_matter(raw);
            let title = fm_title.or_else(|| passages::first_h1(body));
            (title, body.to_string())
        }
        FileKind::Text => (None, raw.to_string()),
        FileKind::Html => {
            let page = html::extract(raw);
            let title = page.title.or_else(|| passages::first_h1(&page.text));
            (title, page.text)
        }
    };
    let title = title.unwrap_or(stem);

    let base = match marker {
        Some(url) => url,
        None => Url::from_file_path(&file.abs).map_err(|()| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not an absolute path: {}", file.abs.display()),
            )
        })?,
    };

    Ok(passages::split(&text, opts)
        .into_iter()
        .map(|p| {
            let passage_title = match &p.heading {
                Some(h) if *h != title => format!("{title} — {h}"),
                _ => title.clone(),
            };
            let mut url = base.clone();
            if let Some(slug) = &p.slug {
                url.set_fragment(Some(slug));
            }
            CorpusPassage {
                title: passage_title,
                url: url.to_string(),
                symbols: symbols::passage_symbols(p.heading.as_deref(), &p.text),
                text: p.text,
            }
        })
        .collect())
}

/// Recognises a first line `<!-- url: https://... -->` naming where the file was
/// published, and returns that URL with the rest of the file.
fn url_marker(text: &str) -> (Option<Url>, &str) {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let inner = first
        .trim()
        .strip_prefix("<!--")
        .and_then(|s| s.strip_suffix("-->"))
        .map(str::trim);
    let Some(inner) = inner else {
        return (None, text);
    };
    let Some(value) = inner
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("url:"))
        .map(|_| inner[4..].trim())
    else {
        return (None, text);
    };
    match Url::parse(value) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => (Some(url), rest),
        _ => {
            tracing::warn!(
                marker = value,
                "ignoring url marker that is not an http(s) URL"
            );
            (None, rest)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_marker_forms() {
        let (url, rest) = url_marker("<!-- URL: https://example.com/a -->\nbody");
        assert_eq!(url.unwrap().as_str(), "https://example.com/a");
        assert_eq!(rest, "body");
        let (url, rest) = url_marker("<!-- url: ftp://x -->\nbody");
        assert!(url.is_none());
        assert_eq!(rest, "body");
        let (url, rest) = url_marker("<!-- a comment -->\nbody");
        assert!(url.is_none());
        assert_eq!(rest, "<!-- a comment -->\nbody");
    }
}
