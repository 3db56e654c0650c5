// Drives /api/chat with the `ai` package's own client: DefaultChatTransport sends the
// request useChat sends, and readUIMessageStream validates every chunk against the SDK's
// schema while it builds the assistant message. Prints one JSON line.
//
//   node aisdk.mjs chat   BASE CHAT_ID QUESTION          a whole answer
//   node aisdk.mjs cut    BASE CHAT_ID QUESTION          cut after the plan, then resume
//   node aisdk.mjs resume BASE CHAT_ID                   reconnect only (null: 204)
import { DefaultChatTransport, readUIMessageStream } from "ai";

const [mode, base, chatId, question] = process.argv.slice(2);
const headers = process.env.API_KEY ? { authorization: `Bearer ${process.env.API_KEY}` } : {};
// One round: the search options ride in the body, as a useChat app would send them.
const transport = new DefaultChatTransport({ api: `${base}/api/chat`, headers, body: { max_loop: 1 } });

function summary(message, chunks) {
  const parts = message?.parts ?? [];
  return {
    text: parts.filter((p) => p.type === "text").map((p) => p.text).join(""),
    sources: parts.filter((p) => p.type === "source-url").map((p) => ({ id: p.sourceId, url: p.url, title: p.title })),
    data: parts.filter((p) => p.type.startsWith("data-")).map((p) => p.type),
    chunks,
  };
}

/** Reads `stream` to its end through the SDK; the chunk types seen, and the message. */
async function read(stream) {
  const chunks = [];
  const seen = stream.pipeThrough(
    new TransformStream({
      transform(chunk, controller) {
        chunks.push(chunk.type);
        controller.enqueue(chunk);
      },
    }),
  );
  let last;
  let error;
  for await (const message of readUIMessageStream({ stream: seen, onError: (e) => { error = String(e); } })) {
    last = message;
  }
  return { ...summary(last, chunks), error: error ?? null };
}

const messages = [{ id: "u1", role: "user", parts: [{ type: "text", text: question ?? "" }] }];

if (mode === "chat") {
  const stream = await transport.sendMessages({ chatId, messages, trigger: "submit-message", messageId: undefined, abortSignal: undefined });
  console.log(JSON.stringify(await read(stream)));
} else if (mode === "cut") {
  const abort = new AbortController();
  const stream = await transport.sendMessages({ chatId, messages, trigger: "submit-message", messageId: undefined, abortSignal: abort.signal });
  const reader = stream.getReader();
  const before = [];
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    before.push(value.type);
    // The plan is in, the answer is not: the connection drops here.
    if (value.type === "data-plan") break;
  }
  abort.abort();
  await reader.cancel().catch(() => {});
  const resumed = await transport.reconnectToStream({ chatId });
  const after = resumed === null ? null : await read(resumed);
  console.log(JSON.stringify({ before, after }));
} else if (mode === "resume") {
  const resumed = await transport.reconnectToStream({ chatId });
  console.log(JSON.stringify(resumed === null ? null : await read(resumed)));
} else {
  console.error(`unknown mode ${mode}`);
  process.exit(2);
}
