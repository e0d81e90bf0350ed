// A tiny GraphQL-over-WebSocket client for the integration tests (tests/api/subscriptions.rs),
// written on the reference client of the graphql-transport-ws protocol (npm `graphql-ws`), with
// `ws` as the WebSocket implementation: the server is checked against code it did not write.
//
// Usage: node client.mjs '<json>' where the JSON holds
//   url        ws://127.0.0.1:PORT/graphql
//   init       the connection_init payload (e.g. {"Authorization": "Bearer iam_s_..."}), or null
//   query      the operation (a subscription; a query or mutation works too)
//   variables  its variables (optional)
//   count      exit after this many `next` payloads (optional: until the server completes)
//   timeoutMs  give up after this long (default 20000)
//
// Prints one JSON object per line on stdout:
//   {"event":"connected"}                       the server acknowledged connection_init
//   {"event":"next","payload":{data,errors}}    one execution result
//   {"event":"complete"}                        the server completed the operation
//   {"event":"error","error":"..."}             the socket closed or failed (exit code 1)
//   {"event":"timeout"}                         nothing more within timeoutMs (exit code 2)
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const args = JSON.parse(process.argv[2] ?? '{}');
const print = (line) => process.stdout.write(`${JSON.stringify(line)}\n`);

let done = false;
let client;
const finish = (code) => {
  if (done) return;
  done = true;
  // Flush stdout before leaving; dispose closes the socket politely.
  Promise.resolve(client?.dispose())
    .catch(() => {})
    .finally(() => process.stdout.write('', () => process.exit(code)));
};

setTimeout(() => {
  print({ event: 'timeout' });
  finish(2);
}, args.timeoutMs ?? 20000).unref();

client = createClient({
  url: args.url,
  webSocketImpl: WebSocket,
  connectionParams: args.init ?? undefined,
  retryAttempts: 0,
  lazy: true,
  on: {
    connected: () => print({ event: 'connected' }),
    closed: (event) => {
      if (!done && event && event.code !== 1000) {
        print({ event: 'error', error: `closed ${event.code}: ${event.reason ?? ''}` });
        finish(1);
      }
    },
  },
});

let received = 0;
client.subscribe(
  { query: args.query, variables: args.variables ?? {} },
  {
    next: (payload) => {
      print({ event: 'next', payload });
      received += 1;
      if (args.count && received >= args.count) finish(0);
    },
    error: (error) => {
      const text = error instanceof Error ? error.message
        : error && typeof error === 'object' && 'code' in error ? `closed ${error.code}: ${error.reason ?? ''}`
        : JSON.stringify(error);
      print({ event: 'error', error: text });
      finish(1);
    },
    complete: () => {
      print({ event: 'complete' });
      finish(0);
    },
  },
);
