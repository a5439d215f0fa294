'use strict';
// What an idle connection costs: 10,000 ws clients on `npm start`'s echo server (sack face), each of which sent
// one message and got its echo, then nothing. The cost is the server process's resident memory growth over
// that time, read from its /proc status: everything the process holds for a connection is in it (native state,
// buffers, the face's JavaScript objects). Memory is asserted, never a timing.
const test = require('ava');
const { startEcho, memoryOf, connect, ask } = require('./helpers.js');

const CONNECTIONS = 10000;
/** Connections opening at once, as `../shared/wsbench conns` does. */
const CONCURRENCY = 256;
/**
 * Bytes per idle connection the server may hold: what it holds now (about 1.95 KB here, README "Memory per idle
 * connection") and a margin for the spread between runs on this machine (1.9-2.1 KB). Issue 14 asks for 2 KB.
 */
const BOUND = 2.25 * 1024;

test('10,000 idle connections cost the server at most the bound per connection in resident memory', async (t) => {
  t.timeout(120000);
  const { child, port } = await startEcho(t);
  /** Opens `count` clients, CONCURRENCY at a time, each of which sends a message and waits for its echo. */
  const open = async (count) => {
    const clients = [];
    let next = 0;
    const opener = async () => {
      while (next < count) {
        const i = next++;
        const ws = await connect({ port }, '/', { perMessageDeflate: false });
        t.is(await ask(ws, `hello ${i}`), `hello ${i}`);
        clients.push(ws);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, opener));
    return clients;
  };
  // One round of connections that come and go first: what the first ones cost once (code paged in, the JIT,
  // the runtime threads' buffers) is not a cost per connection.
  const warmUp = await open(CONCURRENCY);
  await Promise.all(warmUp.map((ws) => new Promise((resolve) => {
    ws.once('close', resolve);
    ws.close();
  })));
  const first = await connect({ port }, '/', { perMessageDeflate: false });
  t.is(await ask(first, 'baseline'), 'baseline');
  const before = memoryOf(child.pid).rss;

  const clients = await open(CONNECTIONS);
  // Idle for a moment: what is freed after the handshakes (and trimmed natively within 2 s) is not counted.
  await new Promise((resolve) => setTimeout(resolve, 3000));
  const after = memoryOf(child.pid).rss;
  // Every connection is still served.
  t.is(await ask(clients[CONNECTIONS - 1], 'still there'), 'still there');

  const perConnection = (after - before) / CONNECTIONS;
  t.log(`server RSS ${(before / 1048576).toFixed(1)} MiB -> ${(after / 1048576).toFixed(1)} MiB: ${perConnection.toFixed(0)} B per idle connection (bound ${BOUND})`);
  t.true(perConnection <= BOUND, `${perConnection.toFixed(0)} bytes per idle connection`);
  for (const ws of clients) ws.terminate();
  first.terminate();
});
