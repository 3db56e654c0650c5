"""The web page end to end, in Debian's headless Chromium driven by Playwright.

Every test that runs against ``backend`` runs once per entry of ``BACKENDS``: servers that
serve the page at ``/`` and answer ``POST /deepsearch`` with the real search. Today that is
the stand-in below (FastAPI + this package's DeepSearch over a small corpus); the FastAPI
service and the axum binary join by adding their name to ``BACKENDS`` and a branch to the
``backend`` fixture. The stand-in also misbehaves on demand (a query starting with ``!mode``)
so the page's handling of heartbeats, errors, cut streams and hostile data is checked too.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from collections.abc import AsyncIterator
from importlib.resources import files
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from playwright.async_api import Browser, Page, async_playwright, expect
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from conftest import event_number, frames, serve, sse_events
from deepsearch_stream import DeepSearch, EventStream, InvalidRequestError
from servers import running

pytestmark = pytest.mark.asyncio(loop_scope="module")

BACKENDS = ["stand-in", "fastapi", "axum"]

DOCS = {
    "tokio.md": "<!-- url: https://tokio.rs/ -->\n# Tokio\n\n"
    "Tokio is an asynchronous runtime for the Rust programming language. "
    "It provides the building blocks needed for writing network applications. "
    "Tokio schedules tasks on a work-stealing thread pool and drives timers and sockets.\n",
    "async.md": "<!-- url: https://rust-lang.example/async -->\n# Async Rust\n\n"
    "Async functions in Rust return futures; an asynchronous runtime such as Tokio "
    "polls those futures to completion.\n",
    "tea.md": "<!-- url: https://tea.example/green -->\n# Green tea\n\n"
    "Steep green tea leaves for two minutes in water just below boiling.\n",
}
URLS = {"https://tokio.rs/", "https://rust-lang.example/async", "https://tea.example/green"}
QUESTION = "What is Tokio?"
PAGE = files("deepsearch_stream").joinpath("static", "index.html")
WAIT_MS = 20_000


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Debian's chromium is not on PATH: `apt-get install chromium` (.ci/run does it)",
            pytrace=False,
        )
    return path


# --- the stand-in server ------------------------------------------------------------


class SearchBody(BaseModel):
    query: str
    request_id: str
    max_loop: int = Field(3, ge=1, le=10)
    stream_mode: str = "all"


def error_json(status: int, code: str, message: str, field: str | None, **headers: str) -> Response:
    body = {"error": {"code": code, "message": message, "field": field}}
    return JSONResponse(body, status_code=status, headers=headers)


async def cut_after_first_answer(events: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The real stream, cut (no `final`, no `[DONE]`) after its first answer piece."""
    async for chunk in events:
        for frame in frames(chunk):
            yield frame
            if b'"type": "answer"' in frame:
                return


def scripted(mode: str, request_id: str) -> EventStream:
    """Hand-made streams through the core's EventStream, heartbeats every 50 ms when idle."""
    stream = EventStream(request_id, heartbeat=0.05)
    doc = {"title": "Tokio", "url": "https://tokio.rs/", "snippet": "A runtime.", "engine": "local"}

    async def slow() -> None:
        await stream.send("status", "Searching…")
        await asyncio.sleep(0.3)  # idle: heartbeats go out
        await stream.send("plan", {"loop": 1, "queries": ["tokio runtime"]})
        await stream.send(
            "intermediate", {"loop": 1, "results": [{"query": "tokio runtime", "docs": [doc]}]}
        )
        for piece in ["Tokio is ", "an asynchronous ", "runtime [", "1] for Rust", "."]:
            await asyncio.sleep(0.25)
            await stream.send("answer", piece)
        await asyncio.sleep(0.3)
        answer = "Tokio is an asynchronous runtime [1] for Rust."
        sources = [{"id": 1, "title": "Tokio", "url": "https://tokio.rs/"}]
        final = {
            "answer": answer,
            "sources": sources,
            "loops": 1,
            "queries": ["q"],
            "elapsed_ms": 9,
        }
        await stream.send("final", final)

    async def failing() -> None:
        await stream.send("status", "Searching…")
        await stream.send("answer", "Half an ans")
        stream.fail("the model went away", "llm_unavailable")

    async def hostile() -> None:
        bad = [
            {"title": '<img src=x onerror="window.pwned=1">', "url": "javascript:window.pwned=2"},
            {"title": "data link", "url": "data:text/html,<b>x</b>"},
            {"title": "fine", "url": "https://ok.example/<b>"},
        ]
        docs = [
            {**d, "snippet": "<script>window.pwned=3</script>", "engine": "<i>e</i>"} for d in bad
        ]
        await stream.send(
            "intermediate", {"loop": 1, "results": [{"query": "<b>q</b>", "docs": docs}]}
        )
        await stream.send("answer", "<img src=y onerror=window.pwned=4> [1]")
        sources = [{"id": 1, "title": "<b>s</b>", "url": "javascript:window.pwned=5"}]
        await stream.send(
            "final",
            {
                "answer": "<img src=y onerror=window.pwned=4> [1]",
                "sources": sources,
                "loops": 1,
                "queries": [],
                "elapsed_ms": 1,
            },
        )

    stream.start({"slow": slow, "error": failing, "hostile": hostile}[mode]())
    return stream


def standin_app(ds: DeepSearch) -> FastAPI:
    app = FastAPI()
    page = PAGE.read_text(encoding="utf-8")

    @app.exception_handler(RequestValidationError)
    async def bad_body(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0]
        field = str(first["loc"][-1]) if first.get("loc") else None
        return error_json(422, "invalid_request", str(first["msg"]), field)

    @app.get("/")
    async def index() -> HTMLResponse:
        return HTMLResponse(page)

    @app.post("/deepsearch", response_model=None)
    async def deepsearch(body: SearchBody, request: Request) -> Response:
        if "last-event-id" in request.headers:
            # No replay log here: the page's resume is refused, so a cut stream stays lost.
            return error_json(409, "not_resumable", "this stand-in cannot resume streams", None)
        mode, _, rest = body.query.partition(" ")
        if mode == "!busy":
            return error_json(
                503, "overloaded", "too many searches at once", None, **{"Retry-After": "5"}
            )
        if mode in ("!slow", "!error", "!hostile"):
            return EventSourceResponse(scripted(mode[1:], body.request_id), ping=0)
        query = rest if mode == "!truncate" else body.query
        try:
            events = ds.sse(query, body.request_id, body.max_loop, body.stream_mode, heartbeat=1.0)
        except InvalidRequestError as e:
            field = re.match(r"invalid (\w+)", str(e))
            return error_json(422, "invalid_request", str(e), field and field[1])
        if mode == "!truncate":
            return EventSourceResponse(cut_after_first_answer(events), ping=0)
        return EventSourceResponse(events, ping=0)

    return app


# --- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web-corpus")
    for name, text in DOCS.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def standin(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    ds = DeepSearch(["local"], corpus, "offline", cache_dir=tmp_path_factory.mktemp("web-cache"))
    async with serve(standin_app(ds)) as base:
        yield base


@pytest_asyncio.fixture(scope="module", loop_scope="module", params=BACKENDS)
async def backend(
    request: pytest.FixtureRequest,
    standin: str,
    corpus: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[str]:
    """Base URL of a server under test: the stand-in, or a real server process."""
    if request.param == "stand-in":
        yield standin
        return
    cache = tmp_path_factory.mktemp(f"web-{request.param}")
    args = ["--corpus", str(corpus), "--cache-dir", str(cache), "--heartbeat", "1"]
    with running(request.param, args) as server:
        yield server.url


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, headless=True)
        yield browser
        await browser.close()


@pytest_asyncio.fixture(loop_scope="module")
async def page(browser: Browser) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 390, "height": 844})
    page = await context.new_page()
    page.set_default_timeout(WAIT_MS)
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on(
        "console",
        lambda msg: problems.append(f"console: {msg.text}") if msg.type == "error" else None,
    )
    yield page
    await context.close()
    # A refused request logs a console error ("Failed to load resource"), nothing else may.
    assert [p for p in problems if "Failed to load resource" not in p] == []


async def search(page: Page, base: str, query: str, rounds: int = 2) -> None:
    await page.goto(base + "/")
    await page.get_by_label("Question").fill(query)
    await page.get_by_label("Max rounds").select_option(str(rounds))
    await page.get_by_role("button", name="Search").click()


async def stats(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("() => ({...deepsearchPage.stats})")
    return result


# --- the SSE parser ------------------------------------------------------------------

STREAM = (
    "\ufeff: comment first\r\n"
    'id: 1\r\ndata: {"a": 1}\r\n\r\n'
    "data: line one\r\ndata: line two\r\n\r\n"
    "event: cr\rdata: cr one\rdata: cr two\r\r"
    "event: custom\ndata:no space\ndata:  two spaces\n\n"
    ": heartbeat comment\n"
    "data\n\n"
    "id: 7\nretry: 100\nunknown: x\ndata: 你好 [1]\r\n\n"
    "data: heartbeat\n\n"
    "data: [DONE]\n\n"
    "data: unfinished"
)
EXPECTED = [
    {"type": "message", "data": '{"a": 1}', "id": "1"},
    {"type": "message", "data": "line one\nline two", "id": "1"},
    {"type": "cr", "data": "cr one\ncr two", "id": "1"},
    {"type": "custom", "data": "no space\n two spaces", "id": "1"},
    {"type": "message", "data": "", "id": "1"},
    {"type": "message", "data": "你好 [1]", "id": "7"},
    {"type": "message", "data": "heartbeat", "id": "7"},
    {"type": "message", "data": "[DONE]", "id": "7"},
]

ALL_CHUNKINGS = """(text) => {
  const seen = new Set();
  const run = (chunks) => seen.add(JSON.stringify(deepsearchPage.parseSSE(chunks)));
  run([text]);
  run(Array.from(text));
  for (let i = 0; i <= text.length; i++) {
    run([text.slice(0, i), text.slice(i)]);
    for (let j = i; j <= text.length; j += 3) {
      run([text.slice(0, i), text.slice(i, j), "", text.slice(j)]);
    }
  }
  return [...seen].map((s) => JSON.parse(s));
}"""


async def test_sse_parser_under_every_chunking(page: Page, backend: str) -> None:
    await page.goto(backend + "/")
    # The page strips a BOM through TextDecoder, not the parser: start after it.
    results = await page.evaluate(ALL_CHUNKINGS, STREAM[1:])
    assert results == [{"events": EXPECTED, "comments": [" comment first", " heartbeat comment"]}]


async def test_text_decoder_and_parser_across_utf8_splits(page: Page, backend: str) -> None:
    await page.goto(backend + "/")
    got = await page.evaluate(
        """(text) => {
          const bytes = new TextEncoder().encode(text);
          const out = new Set();
          for (let i = 0; i <= bytes.length; i++) {
            const d = new TextDecoder();
            const events = [];
            const p = deepsearchPage.createSSEParser((e) => events.push(e.data));
            p.push(d.decode(bytes.slice(0, i), {stream: true}));
            p.push(d.decode(bytes.slice(i), {stream: true}));
            p.push(d.decode());
            out.add(JSON.stringify(events));
          }
          return [...out];
        }""",
        "data: 深度搜索\r\n\r\ndata: ok\r\r",
    )
    assert got == ['["深度搜索","ok"]']


# --- against every backend -----------------------------------------------------------


async def test_search_streams_the_plan_results_answer_and_sources(page: Page, backend: str) -> None:
    await search(page, backend, QUESTION, rounds=2)
    await expect(page.locator("body")).to_have_attribute("data-state", "finished")
    await expect(page.locator("#conn-label")).to_have_text("finished")
    await expect(page.locator("#notice")).to_be_hidden()
    # The status line says the search is over, not its last progress line.
    await expect(page.locator("#status")).to_have_text("Search finished.")

    # The plan and the results of each round.
    plan = page.locator("#round-1 ol.plan li")
    assert await plan.count() >= 1
    assert QUESTION in await plan.all_text_contents()
    result_links = page.locator("#rounds .docs a")
    retrieved = {await a.get_attribute("href") for a in await result_links.all()}
    assert "https://tokio.rs/" in retrieved and retrieved <= URLS
    assert "local" in await page.locator("#rounds .docs .engine").all_text_contents()

    # The answer arrived in pieces and grew.
    s = await stats(page)
    assert s["done"] and s["messages"] > 4
    assert s["answerPieces"] >= 2
    lengths = s["answerLengths"]
    assert len(set(lengths)) >= 2 and lengths == sorted(lengths)
    answer = await page.locator("#answer").text_content()
    assert answer is not None and "asynchronous runtime" in answer and len(answer) == lengths[-1]

    # Sources: links to the retrieved URLs; each citation links to its entry.
    source_links = page.locator("#sources li a")
    await expect(page.locator("#sources-box")).to_be_visible()
    hrefs = [await a.get_attribute("href") for a in await source_links.all()]
    assert hrefs and set(hrefs) <= retrieved and "https://tokio.rs/" in hrefs
    cites = page.locator("#answer a.cite")
    assert await cites.count() >= 1
    assert await page.locator("#answer span.cite").count() == 0  # every marker resolved
    first = cites.first
    n = await first.get_attribute("data-cite")
    await first.click()
    assert await page.evaluate("location.hash") == f"#source-{n}"
    target = page.locator(f"#source-{n}")
    await expect(target).to_be_focused()
    await expect(target).to_be_in_viewport()
    assert await page.evaluate("document.querySelector(':target').id") == f"source-{n}"

    # The heartbeat dot pulsed on the messages; Search is ready again.
    assert int(await page.locator("#dot").get_attribute("data-beats") or 0) >= s["messages"]
    await expect(page.get_by_role("button", name="Search")).to_be_enabled()
    await expect(page.get_by_role("button", name="Stop")).to_be_disabled()


async def test_refused_request_shows_the_json_error(page: Page, backend: str) -> None:
    body = {"query": "", "request_id": "r", "max_loop": 2, "stream_mode": "all"}
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(f"{backend}/deepsearch", json=body)
    assert r.status_code == 422
    message = r.json()["error"]["message"]

    await search(page, backend, "   ")
    notice = page.locator("#notice")
    await expect(page.locator("body")).to_have_attribute("data-state", "error")
    await expect(notice).to_be_visible()
    await expect(notice).to_contain_text(message)
    await expect(notice).to_contain_text("HTTP 422")
    await expect(page.get_by_role("button", name="Search")).to_be_enabled()


async def test_network_error_is_connection_lost(page: Page, backend: str) -> None:
    await page.route("**/deepsearch", lambda route: route.abort("connectionreset"))
    await search(page, backend, QUESTION)
    await expect(page.locator("body")).to_have_attribute("data-state", "lost")
    await expect(page.locator("#conn-label")).to_have_text("connection lost")
    await expect(page.locator("#notice")).to_contain_text("network error")
    assert (await stats(page))["resumes"] == 3  # it tried to resume, then gave up


class CutFirstResponse:
    """A Playwright route handler: the first response is cut after its third numbered
    event (after `prefix`); later requests go through, their Last-Event-ID recorded."""

    def __init__(self, prefix: bytes = b"") -> None:
        self.prefix = prefix
        self.body = b""
        self.resumed_with: list[str | None] = []

    @property
    def ids(self) -> list[str]:
        """Ids of the numbered events (not heartbeats, not [DONE]) of the whole first
        response."""
        return [i for i, data in sse_events(self.body) if i and data not in ("heartbeat", "[DONE]")]

    @property
    def events(self) -> int:
        """Numbered events in the whole first response."""
        return len(self.ids)

    async def __call__(self, route: Any) -> None:
        if self.body:
            self.resumed_with.append((await route.request.all_headers()).get("last-event-id"))
            await route.continue_()
            return
        response = await route.fetch()
        self.body = await response.body()
        frames = self.body.split(b"\n\n")
        numbered = [
            i
            for i, f in enumerate(frames)
            if b"id: " in f and b"data: heartbeat" not in f and b"data: [DONE]" not in f
        ]
        cut = self.prefix + b"\n\n".join(frames[: numbered[2] + 1]) + b"\n\n"
        await route.fulfill(response=response, body=cut)


@pytest.mark.parametrize("real", ["fastapi", "axum"])
async def test_a_dropped_connection_resumes_without_loss(
    page: Page, real: str, corpus: Path, tmp_path: Path
) -> None:
    """The first response is cut after three events; the page resumes with Last-Event-ID
    and the real server replays the rest: every event once, the search finished."""
    cut_first = CutFirstResponse()
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--heartbeat", "1"]
    with running(real, args) as server:
        await page.route("**/deepsearch", cut_first)
        await search(page, server.url, QUESTION)
        await expect(page.locator("body")).to_have_attribute("data-state", "finished")
        await expect(page.locator("#notice")).to_contain_text("resumed")
        await expect(page.locator("#sources-box")).to_be_visible()
    assert cut_first.resumed_with == [cut_first.ids[2]]
    s = await stats(page)
    assert s["done"] and s["resumes"] == 1
    assert s["messages"] == cut_first.events, "every event once: none missed, none twice"


# --- the stand-in's misbehaviours ----------------------------------------------------


SNAPSHOT = """() => ({
  length: document.getElementById("answer").textContent.length,
  spans: document.querySelectorAll("#answer span.cite").length,
  links: document.querySelectorAll("#answer a.cite").length,
  label: document.getElementById("conn-label").textContent,
  state: document.body.dataset.state,
})"""


async def test_answer_grows_live_and_heartbeats_pulse(page: Page, standin: str) -> None:
    await search(page, standin, "!slow go")
    label = page.locator("#conn-label")
    await expect(label).to_have_text(re.compile("heartbeat"))
    lengths: list[int] = []
    labels: set[str] = set()
    plain_markers = False
    for _ in range(400):
        snap = await page.evaluate(SNAPSHOT)  # one look, so nothing changes in between
        lengths.append(snap["length"])
        labels.add(snap["label"])
        if snap["spans"]:
            plain_markers = True  # before `final` a marker is plain text, not a link
            assert snap["links"] == 0
        if snap["state"] == "finished":
            break
        await asyncio.sleep(0.03)
    growing = [n for n in dict.fromkeys(lengths) if n > 0]
    assert len(growing) >= 3, lengths
    assert plain_markers
    assert {"connected", "connected · idle (heartbeat)"} <= labels
    s = await stats(page)
    assert s["heartbeats"] >= 2 and s["answerPieces"] == 5
    await expect(page.locator("#answer")).to_have_text(
        "Tokio is an asynchronous runtime [1] for Rust."
    )
    await expect(page.locator("#answer a.cite")).to_have_attribute("href", "#source-1")


async def test_stream_without_done_is_connection_lost(page: Page, standin: str) -> None:
    await search(page, standin, "!truncate " + QUESTION)
    await expect(page.locator("body")).to_have_attribute("data-state", "lost")
    await expect(page.locator("#conn-label")).to_have_text("connection lost")
    await expect(page.locator("#notice")).to_contain_text("Connection lost")
    await expect(page.locator("#notice")).to_contain_text("resuming failed")
    await expect(page.locator("#answer")).not_to_be_empty()  # what arrived is kept
    await expect(page.locator("#sources-box")).to_be_hidden()
    s = await stats(page)
    assert s["answerPieces"] == 1 and not s["done"] and s["resumes"] == 1


async def test_error_message_shows_message_and_code(page: Page, standin: str) -> None:
    await search(page, standin, "!error now")
    await expect(page.locator("body")).to_have_attribute("data-state", "error")
    notice = page.locator("#notice")
    await expect(notice).to_contain_text("the model went away")
    await expect(notice).to_contain_text("llm_unavailable")
    assert (await stats(page))["done"]  # [DONE] came, and still it is an error, not "finished"
    await expect(page.locator("#conn-label")).to_have_text("error")


async def test_overloaded_shows_retry_after(page: Page, standin: str) -> None:
    await search(page, standin, "!busy now")
    notice = page.locator("#notice")
    await expect(notice).to_contain_text("too many searches at once")
    await expect(notice).to_contain_text("HTTP 503")
    await expect(notice).to_contain_text("Try again in 5 s")


async def test_stop_aborts_the_search(page: Page, standin: str) -> None:
    await search(page, standin, "!slow go")
    await expect(page.locator("#round-1")).to_be_visible()
    await page.get_by_role("button", name="Stop").click()
    await expect(page.locator("body")).to_have_attribute("data-state", "stopped")
    await expect(page.get_by_role("button", name="Search")).to_be_enabled()
    pieces = (await stats(page))["answerPieces"]
    await asyncio.sleep(0.6)  # nothing more arrives once stopped
    assert (await stats(page))["answerPieces"] == pieces < 5


async def test_server_data_is_rendered_as_text(page: Page, standin: str) -> None:
    await search(page, standin, "!hostile x")
    await expect(page.locator("body")).to_have_attribute("data-state", "finished")
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main img, main script, main b, main i").count() == 0
    hrefs = [await a.get_attribute("href") for a in await page.locator("main a[href]").all()]
    assert sorted(hrefs) == ["#source-1", "https://ok.example/%3Cb%3E"]
    await expect(page.locator("#rounds")).to_contain_text('<img src=x onerror="window.pwned=1">')
    await expect(page.locator("#sources")).to_contain_text("<b>s</b>")


# --- with an API key (the real servers) -----------------------------------------------

PAGE_KEY = "page-key-1"


@pytest.mark.parametrize("server_backend", ["fastapi", "axum"])
async def test_page_sends_the_api_key_from_the_fragment_or_a_prompt(
    page: Page, corpus: Path, tmp_path: Path, server_backend: str
) -> None:
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--api-key", PAGE_KEY]
    with running(server_backend, args) as server:
        prompts: list[str] = []
        responses: list[Any] = []

        async def answer(dialog: Any) -> None:
            prompts.append(dialog.message)
            await dialog.accept(PAGE_KEY)

        # Recorded synchronously, in the order the browser saw them: an async handler
        # awaiting the header could append after the assertion below had already run.
        def record(response: Any) -> None:
            if response.url.endswith("/deepsearch"):
                responses.append(response)

        async def searches() -> list[tuple[int, str | None]]:
            return [(r.status, await r.request.header_value("authorization")) for r in responses]

        async def run_search() -> None:
            async with page.expect_response(lambda r: r.url.endswith("/deepsearch")):
                await page.get_by_role("button", name="Search").click()
            await expect(page.locator("body")).to_have_attribute("data-state", "finished")

        page.on("dialog", answer)
        page.on("response", record)
        # A wrong key in the fragment: refused, asked for, then the search runs.
        await page.goto(server.url + "/#key=wrong")
        assert "key=" not in page.url, "the key leaves the address bar"
        await page.get_by_label("Question").fill(QUESTION)
        await run_search()
        assert prompts == ["The API key was refused. API key:"]
        assert await searches() == [(401, "Bearer wrong"), (200, f"Bearer {PAGE_KEY}")]
        # The key is kept for the tab: the next search asks nothing.
        await run_search()
        assert len(prompts) == 1 and (await searches())[2:] == [(200, f"Bearer {PAGE_KEY}")]
        # No key at all: asked for on the first 401.
        await page.evaluate("sessionStorage.clear()")
        await run_search()
        assert prompts[1:] == ["This service needs an API key:"]
        assert (await searches())[3:] == [(401, None), (200, f"Bearer {PAGE_KEY}")]


EVENTSOURCE = """(url) => new Promise((resolve) => {
  const got = [];
  const es = new EventSource(url);
  const finish = () => { es.close(); resolve(got); };
  es.onmessage = (e) => {
    got.push([e.lastEventId, e.data]);
    if (e.data === "[DONE]") finish();   // else EventSource reconnects forever
  };
  setTimeout(finish, 15000);
})"""


@pytest.mark.parametrize("real", ["fastapi", "axum"])
async def test_browser_eventsource_resumes_on_the_get_route(
    page: Page, real: str, corpus: Path, tmp_path: Path
) -> None:
    """A browser's own EventSource on GET /deepsearch: the first response is cut after
    three events (with `retry: 100` so it comes back soon); it reconnects by itself with
    Last-Event-ID and the server replays the rest, every event once."""
    cut_first = CutFirstResponse(b"retry: 100\n\n")
    args = ["--corpus", str(corpus), "--cache-dir", str(tmp_path), "--heartbeat", "1"]
    args += ["--retry-ms", "100"]
    with running(real, args) as server:
        await page.goto(server.url + "/")
        await page.route("**/deepsearch?*", cut_first)
        got = await page.evaluate(EVENTSOURCE, "deepsearch?query=What+is+Tokio%3F&request_id=es-1")
    # One reconnect. (Playwright does not show the Last-Event-ID header Chromium adds;
    # ids going on from 4 rather than again from 1 show the server got it.)
    assert len(cut_first.resumed_with) == 1
    assert got[-1][1] == "[DONE]"
    ids = [event_number(i) for i, data in got[:-1] if data != "heartbeat"]
    assert ids == list(range(1, len(ids) + 1)), "every event once, in order"
    assert ids[-1] == cut_first.events
