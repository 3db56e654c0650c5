// Runs one AG-UI run against /ag-ui with @ag-ui/client's HttpAgent, which verifies the
// event order as it applies the events. Prints one JSON line: the event types seen, the
// messages and state the agent ends with, and the error of a failed run.
//
//   node agui.mjs BASE QUESTION
import { HttpAgent } from "@ag-ui/client";

const [base, question] = process.argv.slice(2);
const headers = process.env.API_KEY ? { authorization: `Bearer ${process.env.API_KEY}` } : {};
const agent = new HttpAgent({ url: `${base}/ag-ui`, headers, threadId: "thread-1" });
agent.messages = [{ id: "u1", role: "user", content: question }];
const events = [];
let runError = null;
let failure = null;
try {
  await agent.runAgent(
    { runId: "run-1", forwardedProps: { max_loop: 1 } },
    {
      onEvent: ({ event }) => {
        events.push(event.type);
      },
      onRunErrorEvent: ({ event }) => {
        runError = { message: event.message, code: event.code ?? null };
      },
    },
  );
} catch (e) {
  failure = String(e?.message ?? e);
}
const assistant = agent.messages.filter((m) => m.role === "assistant").map((m) => m.content);
console.log(JSON.stringify({ events, assistant, state: agent.state, runError, failure }));
