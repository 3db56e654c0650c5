// Reads one streamed search with the `eventsource` package (the WHATWG EventSource for
// Node) through a proxy that cuts its first connection: EventSource reconnects after the
// server's `retry:` with Last-Event-ID, then, not closing on [DONE], reconnects again
// and must be told to stop (204). Prints one JSON line: the events, the times (ms since
// start) of each open, and whether it ended (readyState CLOSED) by itself.
//
// argv[2]: JSON {"url": GET URL through the proxy, "wait": ms to watch after [DONE]}
import { EventSource } from "eventsource";

const { url, wait } = JSON.parse(process.argv[2]);
const started = Date.now();
const events = [];
const opens = [];
const es = new EventSource(url);
es.onopen = () => opens.push(Date.now() - started);
es.onmessage = (ev) => events.push({ id: ev.lastEventId, data: ev.data });
let doneAt = null;
await new Promise((resolve) => {
  const poll = setInterval(() => {
    const sawDone = events.some((e) => e.data === "[DONE]");
    if (sawDone && doneAt === null) doneAt = Date.now();
    const closed = es.readyState === EventSource.CLOSED;
    const timeUp = Date.now() - started > 60000 || (doneAt !== null && Date.now() - doneAt > wait);
    if (closed || timeUp) {
      clearInterval(poll);
      resolve();
    }
  }, 20);
});
const closed = es.readyState === EventSource.CLOSED;
es.close();
process.stdout.write(JSON.stringify({ events, opens, closed }) + "\n");
