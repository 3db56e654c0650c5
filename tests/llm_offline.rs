//! Behaviour of the offline reasoning kit as the DeepSearch loop uses it.

use deepsearch_stream::deepsearch::offline::text::{
    key_terms, normalize_query, split_sentences, tokenize, word_pieces,
};
use deepsearch_stream::deepsearch::offline::{
    assess, build_answer, plan, Answer, ANSWER_COVERAGE, NO_ANSWER,
};
use deepsearch_stream::deepsearch::PlanHistory;
use deepsearch_stream::search::Document;
use proptest::prelude::*;

fn doc(title: &str, content: &str, score: f64) -> Document {
    Document {
        title: title.to_string(),
        url: format!("https://example.org/{}", title.replace(' ', "-")),
        snippet: String::new(),
        content: content.to_string(),
        score,
    }
}

fn round1(q: &str, max: usize) -> Vec<String> {
    plan(q, 1, &PlanHistory::new(), max)
}

// ---------------------------------------------------------------- planner

#[test]
fn round_one_splits_multi_part_questions() {
    let q = round1("What is WebAssembly? Which browsers support it?", 10);
    assert_eq!(
        q,
        [
            "What is WebAssembly? Which browsers support it?",
            "What is WebAssembly",
            "Which browsers support webassembly",
        ]
    );
    let q = round1(
        "How does Raft elect a leader and how does it replicate logs",
        10,
    );
    assert_eq!(q[1], "How does Raft elect a leader");
    assert_eq!(q[2], "how does raft elect leader replicate logs");
    let q = round1("tokio scheduler internals; axum extractors", 10);
    assert_eq!(q[1..3], ["tokio scheduler internals", "axum extractors"]);
}

#[test]
fn round_one_splits_comparisons_into_sides_plus_whole() {
    let q = round1("What is the difference between TCP and UDP?", 10);
    assert_eq!(
        q,
        ["What is the difference between TCP and UDP?", "TCP", "UDP",]
    );
    let q = round1("PostgreSQL vs. MySQL for analytics", 10);
    assert_eq!(
        q[..3],
        [
            "PostgreSQL vs. MySQL for analytics",
            "PostgreSQL",
            "MySQL for analytics"
        ]
    );
    let q = round1("React compared to Vue", 10);
    assert_eq!(q[1..3], ["React", "Vue"]);
}

#[test]
fn chinese_queries_plan_split_and_cover() {
    let q = round1("Rust与Go的区别是什么？", 10);
    assert_eq!(q[1..3], ["Rust", "Go"]);
    let q = round1("什么是向量数据库以及它的优点", 10);
    assert_eq!(q[0], "什么是向量数据库以及它的优点");
    assert_eq!(q[1], "什么是向量数据库");
    assert!(q[2].contains("向量") && q[2].contains("优点"), "{q:?}");
    let q = round1("苹果、香蕉、橙子的营养价值", 10);
    assert_eq!(
        q[1..4],
        ["苹果 营养价值", "香蕉 营养价值", "橙子的营养价值"]
    );

    let docs = [doc(
        "北京",
        "北京是中华人民共和国的首都，也是政治中心。",
        1.0,
    )];
    let a = assess("中国的首都是哪里？", &docs);
    assert_eq!(key_terms("中国的首都是哪里？"), ["中国", "首都"]);
    // "中国" does not occur in "中华人民共和国": the bigram model is honest about it.
    assert_eq!(a.coverage, 0.5);
    assert_eq!(a.missing_terms, ["中国"]);
    let answer = build_answer("北京是哪个国家的首都", &[], &docs, 2);
    assert_eq!(answer.citations, [0]);
    assert!(answer.text.starts_with("北京是中华人民共和国的首都"));
}

#[test]
fn max_queries_caps_and_zero_means_none() {
    assert_eq!(round1("What is Rust and who created it?", 2).len(), 2);
    assert!(round1("anything at all", 0).is_empty());
}

#[test]
fn never_repeats_a_normalized_earlier_query() {
    let mut history = PlanHistory::new();
    history.record(
        ["WHAT is the difference between tcp and udp", " tcp "],
        Vec::new(),
    );
    let q = plan(
        "What is the difference between TCP and UDP?",
        1,
        &history,
        10,
    );
    // "tcp udp" would only reorder the question's terms.
    assert_eq!(q, ["UDP"]);
    for round in 1..5 {
        for planned in plan(
            "What is the difference between TCP and UDP?",
            round,
            &history,
            10,
        ) {
            assert!(
                !history.was_searched(&planned),
                "{planned} repeated in round {round}"
            );
        }
    }
}

#[test]
fn later_rounds_target_uncovered_terms_with_the_topic() {
    let query = "rust borrow checker lifetime elision rules";
    let mut history = PlanHistory::new();
    let first = plan(query, 1, &history, 3);
    let docs = vec![doc(
        "Borrow checker",
        "The Rust borrow checker enforces ownership rules.",
        2.0,
    )];
    history.record(first, docs.clone());
    let verdict = assess(query, &docs);
    assert_eq!(verdict.missing_terms, ["lifetime", "elision"]);
    history.apply(&verdict);
    let next = plan(query, 2, &history, 10);
    assert_eq!(
        next,
        [
            "lifetime elision rust",
            "rust borrow checker lifetime elision",
            "rust borrow checker lifetime",
            "rust borrow checker elision",
        ]
    );
    // Without the reasoner's help the planner finds the same gaps itself.
    history.missing_terms.clear();
    history.rewrite_query = None;
    assert_eq!(
        plan(query, 2, &history, 1),
        ["rust borrow checker lifetime elision"]
    );
}

#[test]
fn later_round_returns_empty_when_nothing_is_missing() {
    let query = "tokio runtime";
    let docs = vec![doc("Tokio", "Tokio is a runtime.", 1.0)];
    let mut history = PlanHistory::new();
    history.record(plan(query, 1, &history, 5), docs.clone());
    history.apply(&assess(query, &docs));
    assert!(plan(query, 2, &history, 5).is_empty());
    // Once every gap query has run, nothing new is left either.
    let mut gappy = PlanHistory::new();
    gappy.record(["tokio"], vec![doc("x", "tokio", 1.0)]);
    let next = plan("tokio scheduler", 2, &gappy, 5);
    assert_eq!(next, ["tokio scheduler"]);
    gappy.record(next, Vec::new());
    assert!(plan("tokio scheduler", 3, &gappy, 5).is_empty());
}

#[test]
fn later_round_with_no_documents_falls_back_to_other_formulations() {
    let mut history = PlanHistory::new();
    history.record(["What is the difference between TCP and UDP?"], Vec::new());
    history.apply(&assess("What is the difference between TCP and UDP?", &[]));
    let q = plan(
        "What is the difference between TCP and UDP?",
        2,
        &history,
        10,
    );
    // The gaps "tcp udp" are the searched question's terms reordered: not searched again.
    assert_eq!(q, ["TCP", "UDP"]);
}

fn round1_all(q: &str) -> Vec<String> {
    round1(q, 10)
}

#[test]
fn comparisons_split_into_sides() {
    assert_eq!(
        round1_all("tokio vs async-std"),
        ["tokio vs async-std", "tokio", "async-std"]
    );
    assert_eq!(
        round1_all("Which is faster: Go versus Rust?"),
        ["Which is faster: Go versus Rust?", "Go", "Rust"]
    );
    assert_eq!(
        round1_all("Compare PostgreSQL with MySQL"),
        ["Compare PostgreSQL with MySQL", "PostgreSQL", "MySQL"]
    );
    assert_eq!(
        round1_all("Rust和Go的区别是什么？"),
        ["Rust和Go的区别是什么？", "Rust", "Go"]
    );
}

#[test]
fn comparatives_and_many_way_comparisons() {
    assert_eq!(
        round1_all("Is Python faster than Java?")[1..3],
        ["Python", "Java"]
    );
    assert_eq!(
        round1_all("is rust more secure than c++")[1..3],
        ["rust", "c++"]
    );
    assert_eq!(round1_all("Rust vs Go vs Zig")[1..4], ["Rust", "Go", "Zig"]);
}

#[test]
fn multi_part_questions_split() {
    assert_eq!(
        round1_all("What is Rust and who created it?"),
        [
            "What is Rust and who created it?",
            "What is Rust",
            "who created rust",
        ]
    );
    assert_eq!(
        round1_all("pros and cons of rust"),
        ["pros and cons of rust"]
    );
    assert_eq!(
        round1_all("tokio runtime; axum router"),
        ["tokio runtime; axum router", "tokio runtime", "axum router"]
    );
}

#[test]
fn chinese_enumeration_carries_context() {
    let q = round1_all("北京、上海、广州的人口");
    assert_eq!(q[1..4], ["北京 人口", "上海 人口", "广州的人口"]);
}

#[test]
fn degenerate_inputs() {
    assert!(round1_all("").is_empty());
    assert!(round1_all("what is it?").is_empty());
    assert!(plan("rust", 1, &PlanHistory::new(), 0).is_empty());
    assert!(plan("rust", 7, &PlanHistory::new(), 3) == ["rust"]);
}

// --------------------------------------------------------------- reasoner

#[test]
fn coverage_numbers_and_threshold() {
    let docs = [
        doc(
            "Kafka",
            "Apache Kafka is a distributed event streaming platform.",
            3.0,
        ),
        doc("Pulsar", "Pulsar offers geo replication.", 2.0),
    ];
    let a = assess("kafka pulsar geo replication latency", &docs);
    assert_eq!(a.coverage, 0.8);
    assert!(a.is_answer && a.coverage >= ANSWER_COVERAGE);
    assert_eq!(a.missing_terms, ["latency"]);
    assert!(a.reason.contains("4/5"), "{}", a.reason);

    let b = assess("kafka exactly once semantics", &docs);
    assert_eq!(b.coverage, 0.25);
    assert!(!b.is_answer);
    assert_eq!(b.missing_terms, ["exactly", "once", "semantics"]);
    assert_eq!(
        b.rewrite_query.as_deref(),
        Some("exactly once semantics kafka")
    );
}

// ----------------------------------------------------------------- answer

#[test]
fn citations_number_documents_in_order_of_first_use() {
    let docs = [
        doc("Unrelated", "Bananas are yellow fruit.", 5.0),
        doc(
            "Raft",
            "Raft elects a leader using randomized election timeouts.",
            1.0,
        ),
        doc(
            "Paxos",
            "Paxos reaches consensus with proposers and acceptors.",
            0.5,
        ),
        doc(
            "Raft log",
            "The Raft leader replicates log entries to followers.",
            0.9,
        ),
    ];
    let a = build_answer(
        "How does Raft elect a leader and replicate the log?",
        &[],
        &docs,
        4,
    );
    // Most relevant sentence first, so the lower-scored document is [1].
    assert_eq!(a.citations, [3, 1]);
    assert_eq!(
        a.text,
        "The Raft leader replicates log entries to followers. [1] \
         Raft elects a leader using randomized election timeouts. [2]"
    );
    for (n, &doc_idx) in a.citations.iter().enumerate() {
        let marker = format!("[{}]", n + 1);
        let before = &a.text[..a.text.find(&marker).unwrap()];
        let sentence = before.rsplit(']').next().unwrap().trim();
        assert!(
            docs[doc_idx].content.contains(sentence),
            "{sentence} not from doc {doc_idx}"
        );
    }
}

#[test]
fn sub_queries_pull_in_supporting_sentences() {
    let docs = [
        doc(
            "Rust",
            "Rust guarantees memory safety without garbage collection.",
            1.0,
        ),
        doc(
            "Graydon",
            "Graydon Hoare started Rust as a personal project in 2006.",
            1.0,
        ),
    ];
    let without = build_answer("rust memory safety", &[], &docs, 3);
    assert_eq!(without.citations, [0]);
    let with = build_answer(
        "rust memory safety",
        &["who created rust personal project".to_string()],
        &docs,
        3,
    );
    assert_eq!(with.citations, [0, 1]);
}

#[test]
fn mmr_skips_near_duplicate_sentences_across_documents() {
    let docs = [
        doc(
            "a",
            "SQLite is a small, fast, self-contained SQL database engine.",
            1.0,
        ),
        doc(
            "b",
            "SQLite is a small, fast, self-contained, reliable SQL database engine.",
            1.0,
        ),
        doc(
            "c",
            "SQLite is the most used database engine in the world.",
            1.0,
        ),
    ];
    let a = build_answer("sqlite database engine", &[], &docs, 3);
    assert_eq!(a.citations.len(), 2);
    assert!(!a.citations.contains(&1) || !a.citations.contains(&0));
    assert_eq!(a.text.matches("self-contained").count(), 1);
}

#[test]
fn irrelevant_documents_give_the_no_answer_text() {
    let docs = [doc("Cooking", "Boil the pasta for ten minutes.", 1.0)];
    let a = build_answer("quantum error correction", &[], &docs, 3);
    assert_eq!(
        a,
        Answer {
            text: NO_ANSWER.to_string(),
            citations: vec![]
        }
    );
    assert_eq!(build_answer("", &[], &docs, 3).text, NO_ANSWER);
    assert_eq!(build_answer("pasta", &[], &[], 3).text, NO_ANSWER);
}

#[test]
fn answer_streams_as_pieces_and_batches() {
    let docs = [doc(
        "Tokio",
        "Tokio is an async runtime. It powers axum.",
        1.0,
    )];
    let a = build_answer("tokio async runtime axum", &[], &docs, 2);
    let pieces: Vec<&str> = a.pieces().collect();
    assert_eq!(pieces.concat(), a.text);
    assert!(pieces.iter().skip(1).all(|p| p.starts_with(' ')));
    assert_eq!(a.batches(3).concat(), a.text);
    assert_eq!(a.batches(3).len(), pieces.len().div_ceil(3));
}

#[test]
fn everything_is_deterministic() {
    let docs: Vec<Document> = (0..6)
        .map(|i| {
            doc(
                &format!("d{i}"),
                &format!("Rust async runtime number {i} is fast. Tokio and smol differ {i}."),
                1.0,
            )
        })
        .collect();
    let first = build_answer(
        "rust async runtime tokio smol",
        &["fast runtime".into()],
        &docs,
        4,
    );
    for _ in 0..20 {
        assert_eq!(
            build_answer(
                "rust async runtime tokio smol",
                &["fast runtime".into()],
                &docs,
                4
            ),
            first
        );
        assert_eq!(
            assess("rust tokio smol", &docs),
            assess("rust tokio smol", &docs)
        );
        assert_eq!(
            round1("tokio vs smol and why is it fast", 5),
            round1("tokio vs smol and why is it fast", 5)
        );
    }
}

// ------------------------------------------------------------ robustness

fn arb_doc() -> impl Strategy<Value = Document> {
    (
        "\\PC{0,20}",
        "\\PC{0,200}",
        "\\PC{0,40}",
        prop::num::f64::ANY,
    )
        .prop_map(|(title, content, snippet, score)| Document {
            title,
            url: String::new(),
            snippet,
            content,
            score,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn text_functions_never_panic(s in "\\PC{0,120}") {
        let _ = tokenize(&s);
        let _ = key_terms(&s);
        let n = normalize_query(&s);
        prop_assert_eq!(normalize_query(&n), n.clone());
        for sentence in split_sentences(&s) {
            prop_assert!(!sentence.is_empty());
            prop_assert!(s.contains(sentence));
        }
        prop_assert_eq!(word_pieces(&s).collect::<String>(), s);
    }

    #[test]
    fn planner_never_repeats_and_respects_cap(q in "\\PC{0,80}", round in 0usize..4, max in 0usize..6,
                                              searched in prop::collection::vec("\\PC{0,20}", 0..4)) {
        let mut history = PlanHistory::new();
        history.record(searched, Vec::new());
        let out = plan(&q, round, &history, max);
        prop_assert!(out.len() <= max);
        let mut seen = std::collections::HashSet::new();
        for planned in &out {
            prop_assert!(!history.was_searched(planned));
            prop_assert!(seen.insert(normalize_query(planned)));
        }
    }

    #[test]
    fn answers_only_cite_given_documents(q in "\\PC{0,60}", docs in prop::collection::vec(arb_doc(), 0..5), max in 0usize..5) {
        let verdict = assess(&q, &docs);
        prop_assert!((0.0..=1.0).contains(&verdict.coverage));
        let a = build_answer(&q, std::slice::from_ref(&q), &docs, max);
        prop_assert!(a.citations.iter().all(|&i| i < docs.len()));
        let mut unique = a.citations.clone();
        unique.sort_unstable();
        unique.dedup();
        prop_assert_eq!(unique.len(), a.citations.len());
        prop_assert_eq!(a.pieces().collect::<String>(), a.text.clone());
        if a.citations.is_empty() {
            prop_assert_eq!(a.text, NO_ANSWER);
        }
    }
}

#[test]
fn planned_queries_are_never_reorderings_of_each_other() {
    let mut history = PlanHistory::new();
    history.record(
        ["run subprocess capture output"],
        vec![doc("x", "run", 1.0)],
    );
    history.rewrite_query = Some("capture run subprocess output".into());
    history.missing_terms = vec!["capture".into()];
    let queries = plan("run subprocess capture output", 2, &history, 5);
    let sets: Vec<Vec<String>> = queries
        .iter()
        .map(|q| {
            let mut t = key_terms(q);
            t.sort();
            t
        })
        .collect();
    assert!(!queries.iter().any(|q| q == "capture run subprocess output"));
    for (i, a) in sets.iter().enumerate() {
        assert_ne!(a, &["capture", "output", "run", "subprocess"]);
        assert!(sets[i + 1..].iter().all(|b| b != a), "{queries:?}");
    }
}

#[test]
fn a_dotted_name_in_the_question_is_a_query_of_its_own() {
    let q = round1("Why does cache.Store.evict drop entries early?", 5);
    assert_eq!(
        q[..2],
        [
            "Why does cache.Store.evict drop entries early?",
            "cache.Store.evict"
        ]
    );
}

#[test]
fn a_sentence_under_the_named_symbol_answers_without_repeating_its_name() {
    // The section's heading names the subject; its sentences do not.
    let docs = [
        doc(
            "other — other.Pool.put",
            "A put on a full pool waits; put blocks the caller until put succeeds.",
            2.0,
        ),
        doc(
            "store — store.Map.put",
            "Insert the value under its name, replacing any older value.",
            1.0,
        ),
    ];
    let a = build_answer("What does Map.put do?", &[], &docs, 1);
    assert_eq!(a.citations, [1], "{}", a.text);
    assert!(a.text.starts_with("Insert the value"));
}

#[test]
fn the_first_sentence_of_the_subject_comes_first() {
    let docs = [doc(
        "net — net.fetch",
        "Download a resource over the network. The fetch retries twice when fetch fails \
         and raises after the last fetch attempt.",
        1.0,
    )];
    let a = build_answer("What does net.fetch do?", &[], &docs, 2);
    assert!(
        a.text
            .starts_with("Download a resource over the network. [1]"),
        "{}",
        a.text
    );
}
