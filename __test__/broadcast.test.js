'use strict';
const test = require('ava');
const WebSocket = require('ws');
const { startServer, connect, messages, closeServer, once } = require('./helpers.js');

test('broadcast reaches every open connection once, in order, text as text and binary as binary', async (t) => {
  const server = startServer(t, { perMessageDeflate: true });
  const clients = await Promise.all(Array.from({ length: 5 }, () => connect(server)));
  const compressed = new WebSocket(`ws://127.0.0.1:${server.port}/`, { perMessageDeflate: { threshold: 0 } });
  await once(compressed, 'open');
  clients.push(compressed);
  await new Promise((r) => setTimeout(r, 50));
  const all = clients.map((ws) => messages(ws, 3));
  const big = 'x'.repeat(5000);
  t.deepEqual(server.broadcast('hello all'), { sent: 6, skipped: 0 });
  t.deepEqual(server.broadcast(new Uint8Array([1, 2, 3])), { sent: 6, skipped: 0 });
  server.broadcast(big);
  for (const got of await Promise.all(all)) {
    t.deepEqual(got.map((m) => [m.isBinary, m.isBinary ? [...m.data] : String(m.data).slice(0, 9)]), [[false, 'hello all'], [true, [1, 2, 3]], [false, 'xxxxxxxxx']]);
    t.is(String(got[2].data), big);
  }
  for (const ws of clients) ws.terminate();
  await closeServer(server);
});

test('a client that stops reading is skipped once its queue passes the limit; the others get everything', async (t) => {
  const server = startServer(t, { broadcastLimit: 64 * 1024 });
  const [slow, fast] = await Promise.all([connect(server), connect(server)]);
  slow._socket.pause();
  const chunk = Buffer.alloc(32 * 1024, 1);
  let skipped = 0;
  const count = 200;
  const received = messages(fast, count, 10000);
  for (let i = 0; i < count; i++) {
    skipped += server.broadcast(chunk).skipped;
    if (i % 10 === 0) await new Promise((r) => setImmediate(r));
  }
  t.true(skipped > 0);
  t.is((await received).length, count);
  slow.terminate();
  fast.terminate();
  await closeServer(server);
});

test('broadcast with no connections, or only closed ones, sends nothing and does not throw', async (t) => {
  const server = startServer(t);
  t.deepEqual(server.broadcast('nobody'), { sent: 0, skipped: 0 });
  const ws = await connect(server);
  ws.terminate();
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(server.broadcast('still nobody'), { sent: 0, skipped: 0 });
  await closeServer(server);
});
