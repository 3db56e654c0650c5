// Reads streamed searches with @microsoft/fetch-event-source (JoyAgent's web client and
// many chat UIs), through a proxy that cuts each session's first connection: the client
// reconnects by itself with Last-Event-ID. Prints one JSON line: per session, the events
// it handed to onmessage, and how many times it reconnected.
//
// argv[2]: JSON {"url": base URL of the proxy, "body": request body, "cuts": [offsets],
// "prefix": session names' prefix}
import { fetchEventSource } from "@microsoft/fetch-event-source";

// The library is written for browsers: it reaches timers and fetch through `window`, and
// `document` for its visibility listener (removed on close even with openWhenHidden).
globalThis.window = globalThis;
globalThis.document = { hidden: false, addEventListener() {}, removeEventListener() {} };

const { url, body, cuts, prefix } = JSON.parse(process.argv[2]);

async function session(cut, index) {
  const events = [];
  let opens = 0;
  const ctrl = new AbortController();
  const watchdog = setTimeout(() => ctrl.abort(), 30000);
  await new Promise((resolve, reject) => {
    fetchEventSource(`${url}/deepsearch?cut=${cut}&session=${prefix}${index}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body,
      signal: ctrl.signal,
      openWhenHidden: true,
      fetch: globalThis.fetch,
      async onopen(res) {
        opens++;
        if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      },
      onmessage(ev) {
        events.push({ id: ev.id, data: ev.data });
        if (ev.data === "[DONE]") {
          ctrl.abort();
          resolve();
        }
      },
      onclose() {
        // The server closed before [DONE]: retry, as a chat UI does.
        throw new Error("closed before [DONE]");
      },
      onerror(err) {
        if (opens > 10 || /^HTTP /.test(err.message)) throw err;
        return 10; // ms: the cut is the proxy's, not a loaded server's
      },
    }).then(resolve, reject);
  }).finally(() => clearTimeout(watchdog));
  return { cut, events, reconnects: opens - 1 };
}

const out = [];
for (const [i, cut] of cuts.entries()) out.push(await session(cut, i));
process.stdout.write(JSON.stringify(out) + "\n");
