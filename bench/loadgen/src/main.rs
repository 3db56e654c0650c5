//! `loadgen`: the load client of `bench/run`. Each subcommand prints JSON lines on
//! stdout (progress lines carry `"event"`, the last line carries `"cmd"`).
//!
//! ```text
//! loadgen stream  --url U [--count N] [--payload-bytes 200] [--verify]
//! loadgen idle    --url U --streams N --hold S --period S [--open-concurrency 256]
//! loadgen slow    --url U --count N [--read-interval-ms 20] [--slow-seconds 5]
//! loadgen cancel  --url U [--trials 10] [--interval-ms 10] [--read-before 5]
//! loadgen ceiling [--count N] [--payload-bytes 200] [--parse]
//! ```
//!
//! The routes are those of `bench/CONTRACT.md`. Everything runs on one thread (a
//! current-thread tokio runtime), so the client never takes more than one core;
//! `ceiling` adds one writer thread.

mod http;
mod sse;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream as StdTcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch, Semaphore};

use sse::{Event, SseParser};

type Res<T> = Result<T, String>;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let Some((cmd, rest)) = argv.split_first() else {
        eprintln!("usage: loadgen stream|idle|slow|cancel|ceiling [--flag value ...]");
        std::process::exit(2);
    };
    raise_nofile();
    let result = Args::parse(rest).and_then(|args| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        match cmd.as_str() {
            "stream" => runtime.block_on(stream(&args)),
            "idle" => runtime.block_on(idle(&args)),
            "slow" => runtime.block_on(slow(&args)),
            "cancel" => runtime.block_on(cancel(&args)),
            "ceiling" => ceiling(&args),
            other => Err(format!("unknown subcommand {other:?}")),
        }
    });
    match result {
        Ok(line) => emit(&line),
        Err(e) => {
            emit(&json!({ "cmd": cmd, "error": e }));
            std::process::exit(1);
        }
    }
}

fn emit(value: &Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

struct Args(HashMap<String, String>);

impl Args {
    fn parse(rest: &[String]) -> Res<Self> {
        let mut map = HashMap::new();
        let mut it = rest.iter().peekable();
        while let Some(flag) = it.next() {
            let name = flag
                .strip_prefix("--")
                .ok_or_else(|| format!("expected --flag, got {flag:?}"))?;
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                _ => "true".to_string(),
            };
            map.insert(name.to_string(), value);
        }
        Ok(Args(map))
    }

    fn str(&self, name: &str) -> Res<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .ok_or_else(|| format!("--{name} is required"))
    }

    fn num<T: std::str::FromStr>(&self, name: &str, default: T) -> Res<T> {
        match self.0.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("--{name}: bad number {v:?}")),
        }
    }

    fn flag(&self, name: &str) -> bool {
        self.0.get(name).is_some_and(|v| v != "false")
    }
}

// ---- process helpers -------------------------------------------------------------

fn raise_nofile() {
    // SAFETY: plain libc calls on a local struct.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn rusage(who: libc::c_int) -> libc::rusage {
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut ru);
        ru
    }
}

/// User + system CPU seconds of the process (`RUSAGE_SELF`) or this thread.
fn cpu_seconds(who: libc::c_int) -> f64 {
    let ru = rusage(who);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(ru.ru_utime) + secs(ru.ru_stime)
}

fn max_rss_kb() -> i64 {
    rusage(libc::RUSAGE_SELF).ru_maxrss
}

/// Wall clock in nanoseconds since the Unix epoch: the clock the servers' probe uses.
fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0)
}

/// Nearest-rank percentile of sorted values.
fn pct(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn summary(mut values: Vec<f64>) -> Value {
    values.sort_by(f64::total_cmp);
    json!({
        "n": values.len(),
        "p50": pct(&values, 50.0),
        "p90": pct(&values, 90.0),
        "p99": pct(&values, 99.0),
        "max": values.last(),
        "quantiles": (0..=100).map(|p| pct(&values, f64::from(p))).collect::<Vec<_>>(),
    })
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

// ---- stream: one stream as fast as this client reads ---------------------------------

async fn stream(args: &Args) -> Res<Value> {
    let url = args.str("url")?;
    let authority = http::authority(url)?;
    let count: u64 = args.num("count", 100_000)?;
    let payload: usize = args.num("payload-bytes", 200)?;
    let verify = args.flag("verify");
    let id = format!("stream-{}-{}", std::process::id(), now_ns());
    let body = json!({ "id": id, "count": count, "payload_bytes": payload }).to_string();

    let cpu0 = cpu_seconds(libc::RUSAGE_SELF);
    let t0 = Instant::now();
    let mut r = http::send(
        &authority,
        &http::post_request(&authority, "/bench/stream", &body),
    )
    .await
    .map_err(|e| format!("POST /bench/stream: {e}"))?;
    if r.status != 200 {
        return Err(format!("POST /bench/stream answered {}", r.status));
    }
    let ttfb = t0.elapsed();
    let (mut messages, mut heartbeats, mut done) = (0u64, 0u64, false);
    let (mut next, mut out_of_order) = (0u64, 0u64);
    let mut body_bytes = 0u64;
    let mut wire_bytes = r.leftover.len() as u64;
    let mut parser = SseParser::new(verify);
    let mut on_event = |e: Event| match e {
        Event::Message { seq } => {
            messages += 1;
            if verify {
                if seq == Some(next) {
                    next += 1;
                } else {
                    out_of_order += 1;
                    next = seq.map_or(next, |s| s + 1);
                }
            }
        }
        Event::Heartbeat => heartbeats += 1,
        Event::Done => done = true,
    };
    let mut on_body = |b: &[u8]| {
        body_bytes += b.len() as u64;
        parser.feed(b, &mut on_event);
    };
    let mut finished = r.body.feed(&r.leftover, &mut on_body)?;
    let mut buf = vec![0u8; 256 * 1024];
    while !finished {
        let n = r.stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        wire_bytes += n as u64;
        finished = r.body.feed(&buf[..n], &mut on_body)?;
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds(libc::RUSAGE_SELF) - cpu0;
    Ok(json!({
        "cmd": "stream",
        "count": count,
        "payload_bytes": payload,
        "events": messages,
        "heartbeats": heartbeats,
        "done": done,
        "complete": done && messages == count,
        "out_of_order": if verify { Some(out_of_order) } else { None },
        "body_bytes": body_bytes,
        "wire_bytes": wire_bytes,
        "seconds": wall,
        "ttfb_ms": ttfb.as_secs_f64() * 1e3,
        "events_per_s": messages as f64 / wall,
        "mb_per_s": wire_bytes as f64 / wall / 1e6,
        "client_cpu_s": cpu,
        "client_cpu_pct": round3(100.0 * cpu / wall),
        "client_cpu_us_per_event": cpu * 1e6 / messages.max(1) as f64,
    }))
}

// ---- idle: N open streams, heartbeats only -------------------------------------------

struct IdleResult {
    opened_at: Option<f64>,
    heartbeats: Vec<f64>,
    messages: u64,
    closed_early: bool,
    error: Option<String>,
}

async fn idle(args: &Args) -> Res<Value> {
    let url = args.str("url")?;
    let authority = http::authority(url)?;
    let n: usize = args.num("streams", 1000)?;
    let hold: f64 = args.num("hold", 25.0)?;
    let period: f64 = args.num("period", 10.0)?;
    let concurrency: usize = args.num("open-concurrency", 256)?;
    let open_timeout: f64 = args.num("open-timeout", 120.0)?;

    let cpu0 = cpu_seconds(libc::RUSAGE_SELF);
    let t0 = Instant::now();
    let gate = std::sync::Arc::new(Semaphore::new(concurrency.max(1)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let (open_tx, mut open_rx) = mpsc::unbounded_channel::<bool>();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let authority = authority.clone();
        let gate = gate.clone();
        let mut stop = stop_rx.clone();
        let open_tx = open_tx.clone();
        tasks.spawn(async move {
            let mut res = IdleResult {
                opened_at: None,
                heartbeats: Vec::new(),
                messages: 0,
                closed_early: false,
                error: None,
            };
            let body = format!("{{\"id\": \"idle-{i}\"}}");
            let request = http::post_request(&authority, "/bench/idle", &body);
            let permit = gate.acquire().await;
            let sent = http::send(&authority, &request).await;
            drop(permit);
            let mut r = match sent {
                Ok(r) if r.status == 200 => r,
                Ok(r) => {
                    res.error = Some(format!("status {}", r.status));
                    let _ = open_tx.send(false);
                    return res;
                }
                Err(e) => {
                    res.error = Some(e.to_string());
                    let _ = open_tx.send(false);
                    return res;
                }
            };
            res.opened_at = Some(t0.elapsed().as_secs_f64());
            let _ = open_tx.send(true);
            let mut parser = SseParser::new(false);
            let mut buf = vec![0u8; 1024];
            let mut pending = std::mem::take(&mut r.leftover);
            loop {
                let now = t0.elapsed().as_secs_f64();
                let mut on_event = |e: Event| match e {
                    Event::Heartbeat => res.heartbeats.push(now),
                    Event::Message { .. } => res.messages += 1,
                    Event::Done => {}
                };
                let finished = match r
                    .body
                    .feed(&pending, &mut |b| parser.feed(b, &mut on_event))
                {
                    Ok(f) => f,
                    Err(e) => {
                        res.error = Some(e);
                        return res;
                    }
                };
                if finished {
                    res.closed_early = true;
                    return res;
                }
                tokio::select! {
                    read = r.stream.read(&mut buf) => match read {
                        Ok(0) | Err(_) => {
                            res.closed_early = true;
                            return res;
                        }
                        Ok(k) => pending = buf[..k].to_vec(),
                    },
                    _ = stop.wait_for(|s| *s) => return res,
                }
            }
        });
    }
    drop(open_tx);
    let (mut opened, mut failed) = (0usize, 0usize);
    let deadline = tokio::time::Instant::now() + Duration::from_secs_f64(open_timeout);
    while opened + failed < n {
        match tokio::time::timeout_at(deadline, open_rx.recv()).await {
            Ok(Some(true)) => opened += 1,
            Ok(Some(false)) => failed += 1,
            Ok(None) | Err(_) => break,
        }
    }
    let open_s = t0.elapsed().as_secs_f64();
    emit(
        &json!({ "event": "open", "streams": n, "opened": opened, "failed": failed, "open_s": open_s }),
    );
    tokio::time::sleep(Duration::from_secs_f64(hold)).await;
    let _ = stop_tx.send(true);
    let mut results = Vec::with_capacity(n);
    while let Some(r) = tasks.join_next().await {
        results.push(r.map_err(|e| e.to_string())?);
    }
    let cpu = cpu_seconds(libc::RUSAGE_SELF) - cpu0;

    let mut open_times = Vec::new();
    let mut jitter = Vec::new();
    // Intervals that began once every stream was open: heartbeats of idle streams alone,
    // without the server busy opening the others.
    let mut jitter_after_open = Vec::new();
    let mut first_lateness = Vec::new();
    let (mut beats, mut with_beat, mut without_beat, mut closed_early, mut messages) =
        (0usize, 0usize, 0usize, 0usize, 0u64);
    let mut errors: HashMap<String, usize> = HashMap::new();
    for r in &results {
        if let Some(e) = &r.error {
            *errors.entry(e.clone()).or_default() += 1;
        }
        let Some(opened_at) = r.opened_at else {
            continue;
        };
        open_times.push(opened_at * 1e3);
        closed_early += usize::from(r.closed_early);
        messages += r.messages;
        beats += r.heartbeats.len();
        if let Some(first) = r.heartbeats.first() {
            with_beat += 1;
            first_lateness.push((first - opened_at - period) * 1e3);
        } else {
            without_beat += 1;
        }
        for w in r.heartbeats.windows(2) {
            let late = ((w[1] - w[0]) - period).abs() * 1e3;
            jitter.push(late);
            if w[0] >= open_s {
                jitter_after_open.push(late);
            }
        }
    }
    Ok(json!({
        "cmd": "idle",
        "streams": n,
        "opened": opened,
        "open_errors": failed,
        "errors": errors,
        "open_s": open_s,
        "open_ms": summary(open_times),
        "hold_s": hold,
        "period_s": period,
        "heartbeats": beats,
        "streams_with_heartbeat": with_beat,
        "streams_without_heartbeat": without_beat,
        "closed_early": closed_early,
        "unexpected_messages": messages,
        "jitter_ms": summary(jitter),
        "jitter_after_open_ms": summary(jitter_after_open),
        "first_lateness_ms": summary(first_lateness),
        "client_cpu_s": cpu,
        "client_max_rss_kb": max_rss_kb(),
    }))
}

// ---- slow: a reader far slower than the producer -------------------------------------

async fn probe(authority: &str, id: &str, limit: Duration) -> Res<Value> {
    let (status, body) = http::get(authority, &format!("/bench/producer?id={id}"), limit)
        .await
        .map_err(|e| format!("GET /bench/producer: {e}"))?;
    if status != 200 {
        return Err(format!(
            "GET /bench/producer answered {status}: {}",
            String::from_utf8_lossy(&body)
        ));
    }
    serde_json::from_slice(&body).map_err(|e| format!("probe body: {e}"))
}

async fn slow(args: &Args) -> Res<Value> {
    let url = args.str("url")?;
    let authority = http::authority(url)?;
    let count: u64 = args.num("count", 100_000)?;
    let payload: usize = args.num("payload-bytes", 200)?;
    let interval = Duration::from_secs_f64(args.num::<f64>("read-interval-ms", 20.0)? / 1e3);
    let slow_for = Duration::from_secs_f64(args.num("slow-seconds", 5.0)?);
    let id = format!("slow-{}-{}", std::process::id(), now_ns());
    let body = json!({ "id": id, "count": count, "payload_bytes": payload }).to_string();

    let t0 = Instant::now();
    let mut r = http::send(
        &authority,
        &http::post_request(&authority, "/bench/stream", &body),
    )
    .await
    .map_err(|e| format!("POST /bench/stream: {e}"))?;
    if r.status != 200 {
        return Err(format!("POST /bench/stream answered {}", r.status));
    }
    let mut parser = SseParser::new(true);
    let mut queue: std::collections::VecDeque<Event> = std::collections::VecDeque::new();
    let mut finished = r.body.feed(&r.leftover, &mut |b| {
        parser.feed(b, &mut |e| queue.push_back(e))
    })?;
    let (mut received, mut next, mut missing, mut out_of_order, mut unparsed) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut done = false;
    let mut account = |e: Event, done: &mut bool| match e {
        Event::Message { seq: Some(s) } => {
            received += 1;
            if s == next {
                next += 1;
            } else if s > next {
                missing += s - next;
                next = s + 1;
            } else {
                out_of_order += 1;
            }
        }
        Event::Message { seq: None } => {
            received += 1;
            unparsed += 1;
        }
        Event::Heartbeat => {}
        Event::Done => *done = true,
    };
    // Slow phase: one frame per interval; the socket is read only when no whole frame
    // is buffered here, 512 bytes at a time, so this side holds almost nothing.
    let mut small = [0u8; 512];
    let mut slow_read = 0u64;
    while t0.elapsed() < slow_for && !done {
        if let Some(e) = queue.pop_front() {
            if matches!(e, Event::Message { .. }) {
                slow_read += 1;
            }
            account(e, &mut done);
            tokio::time::sleep(interval).await;
            continue;
        }
        if finished {
            break;
        }
        let n = r.stream.read(&mut small).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        finished = r.body.feed(&small[..n], &mut |b| {
            parser.feed(b, &mut |e| queue.push_back(e))
        })?;
    }
    let slow_seconds = t0.elapsed().as_secs_f64();
    let producer = probe(&authority, &id, Duration::from_secs(5))
        .await
        .unwrap_or_else(|e| json!({ "error": e }));
    emit(&json!({ "event": "slow_end", "slow_read": slow_read, "producer": producer }));
    // Drain as fast as possible.
    let t1 = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        while let Some(e) = queue.pop_front() {
            account(e, &mut done);
        }
        if finished || done {
            break;
        }
        let n = r.stream.read(&mut buf).await.map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        finished = r.body.feed(&buf[..n], &mut |b| {
            parser.feed(b, &mut |e| queue.push_back(e))
        })?;
    }
    while let Some(e) = queue.pop_front() {
        account(e, &mut done);
    }
    if next < count {
        missing += count - next;
    }
    Ok(json!({
        "cmd": "slow",
        "count": count,
        "payload_bytes": payload,
        "read_interval_ms": interval.as_secs_f64() * 1e3,
        "reader_events_per_s": 1.0 / interval.as_secs_f64(),
        "slow_seconds": slow_seconds,
        "slow_read": slow_read,
        "producer_at_slow_end": producer,
        "drain_seconds": t1.elapsed().as_secs_f64(),
        "received": received,
        "missing": missing,
        "out_of_order": out_of_order,
        "unparsed": unparsed,
        "done": done,
        "lossless": done && missing == 0 && out_of_order == 0 && unparsed == 0 && received == count,
    }))
}

// ---- cancel: disconnect, then ask the server when its producer stopped ---------------

async fn cancel(args: &Args) -> Res<Value> {
    let url = args.str("url")?;
    let authority = http::authority(url)?;
    let trials: usize = args.num("trials", 10)?;
    let interval_ms: f64 = args.num("interval-ms", 10.0)?;
    let read_before: u64 = args.num("read-before", 5)?;
    let payload: usize = args.num("payload-bytes", 200)?;
    let timeout = Duration::from_secs_f64(args.num("timeout-s", 3.0)?);
    let poll = Duration::from_secs_f64(args.num::<f64>("poll-ms", 2.0)? / 1e3);
    // A finite count bounds a producer that never notices the disconnect.
    let count: Option<u64> = match args.0.get("count") {
        Some(_) => Some(args.num("count", 0)?),
        None => None,
    };

    let mut latencies = Vec::new();
    let mut probe_errors = 0usize;
    let mut timeouts = 0usize;
    let mut reasons: HashMap<String, usize> = HashMap::new();
    let mut trial_rows = Vec::new();
    for trial in 0..trials {
        let id = format!("cancel-{}-{trial}-{}", std::process::id(), now_ns());
        let body =
            json!({ "id": id, "count": count, "payload_bytes": payload, "interval_ms": interval_ms }).to_string();
        let mut r = http::send(
            &authority,
            &http::post_request(&authority, "/bench/stream", &body),
        )
        .await
        .map_err(|e| format!("POST /bench/stream: {e}"))?;
        if r.status != 200 {
            return Err(format!("POST /bench/stream answered {}", r.status));
        }
        let mut parser = SseParser::new(false);
        let mut seen = 0u64;
        let mut pending = std::mem::take(&mut r.leftover);
        let mut buf = vec![0u8; 64 * 1024];
        while seen < read_before {
            r.body.feed(&pending, &mut |b| {
                parser.feed(b, &mut |e| {
                    seen += u64::from(matches!(e, Event::Message { .. }))
                })
            })?;
            if seen >= read_before {
                break;
            }
            let n = tokio::time::timeout(Duration::from_secs(10), r.stream.read(&mut buf))
                .await
                .map_err(|_| "no message within 10 s".to_string())?
                .map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("stream ended before the disconnect".into());
            }
            pending = buf[..n].to_vec();
        }
        let disconnect_ns = now_ns();
        drop(r);
        let started = Instant::now();
        let mut row = json!({ "trial": trial, "latency_ms": null });
        loop {
            // A server whose event loop is starved answers late or not at all: keep asking.
            match probe(&authority, &id, Duration::from_secs(2)).await {
                Ok(p) if p.get("stopped").and_then(Value::as_bool) == Some(true) => {
                    let stopped_at = p.get("stopped_at_ns").and_then(Value::as_u64).unwrap_or(0);
                    let ms = (stopped_at as f64 - disconnect_ns as f64) / 1e6;
                    let reason = p.get("reason").and_then(Value::as_str).unwrap_or("?");
                    *reasons.entry(reason.to_string()).or_default() += 1;
                    latencies.push(ms);
                    row = json!({ "trial": trial, "latency_ms": ms, "reason": reason,
                                  "sent": p.get("sent"),
                                  "answered_after_ms": started.elapsed().as_secs_f64() * 1e3 });
                    break;
                }
                Ok(_) => {}
                Err(_) => probe_errors += 1,
            }
            if started.elapsed() > timeout {
                timeouts += 1;
                break;
            }
            tokio::time::sleep(poll).await;
        }
        trial_rows.push(row);
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    Ok(json!({
        "cmd": "cancel",
        "trials": trials,
        "interval_ms": interval_ms,
        "read_before": read_before,
        "latency_ms": summary(latencies),
        "count": count,
        "timeouts": timeouts,
        "probe_errors": probe_errors,
        "reasons": reasons,
        "rows": trial_rows,
    }))
}

// ---- ceiling: the same bytes through a loopback socket, no HTTP, no SSE ---------------

fn frames(first_seq: u64, n: u64, payload: usize) -> Vec<u8> {
    let text = "x".repeat(payload);
    let mut out = Vec::new();
    for seq in first_seq..first_seq + n {
        out.extend_from_slice(
            format!(
                "id: {}\ndata: {{\"type\": \"bench\", \"data\": {{\"seq\": {seq}, \"text\": \"{text}\"}}, \
                 \"requestId\": \"ceiling\", \"timestamp\": 1795770469.460758}}\n\n",
                seq + 1
            )
            .as_bytes(),
        );
    }
    out
}

fn ceiling(args: &Args) -> Res<Value> {
    let count: u64 = args.num("count", 2_000_000)?;
    let payload: usize = args.num("payload-bytes", 200)?;
    let parse = args.flag("parse");
    const BLOCK: u64 = 256;
    // Frames are rendered once, before the clock starts: only the socket is measured.
    let block = frames(1_000_000, BLOCK, payload);
    let tail = frames(1_000_000, count % BLOCK, payload);
    let frame_bytes = block.len() as f64 / BLOCK as f64;
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let writer = std::thread::spawn(move || -> Res<f64> {
        let (mut sock, _) = listener.accept().map_err(|e| e.to_string())?;
        sock.set_nodelay(true).map_err(|e| e.to_string())?;
        let cpu0 = cpu_seconds(libc::RUSAGE_THREAD);
        for _ in 0..count / BLOCK {
            sock.write_all(&block).map_err(|e| e.to_string())?;
        }
        sock.write_all(&tail).map_err(|e| e.to_string())?;
        Ok(cpu_seconds(libc::RUSAGE_THREAD) - cpu0)
    });
    let mut sock = StdTcpStream::connect(addr).map_err(|e| e.to_string())?;
    let cpu0 = cpu_seconds(libc::RUSAGE_THREAD);
    let t0 = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    let mut messages = 0u64;
    let mut parser = SseParser::new(false);
    loop {
        let n = sock.read(&mut buf).map_err(|e| e.to_string())?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
        if parse {
            parser.feed(&buf[..n], &mut |e| {
                messages += u64::from(matches!(e, Event::Message { .. }))
            });
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    let reader_cpu = cpu_seconds(libc::RUSAGE_THREAD) - cpu0;
    let writer_cpu = writer.join().map_err(|_| "writer panicked")??;
    let events = if parse {
        messages
    } else {
        (bytes as f64 / frame_bytes).round() as u64
    };
    Ok(json!({
        "cmd": "ceiling",
        "count": count,
        "payload_bytes": payload,
        "parse": parse,
        "events": events,
        "bytes": bytes,
        "frame_bytes": frame_bytes,
        "seconds": wall,
        "events_per_s": events as f64 / wall,
        "mb_per_s": bytes as f64 / wall / 1e6,
        "client_cpu_s": reader_cpu,
        "client_cpu_pct": round3(100.0 * reader_cpu / wall),
        "writer_cpu_s": writer_cpu,
    }))
}
