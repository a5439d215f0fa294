'use strict';
const test = require('ava');
const { startServer, connect, messages, once, closeServer } = require('./helpers.js');

function echoServer(t) {
  return startServer(t, {}, (server) => {
    server.onconnect = function (ws) {
      ws.onmessage = (msg) => ws.send(msg);
    };
  });
}

test('echoes text as text and binary as binary, in order', async (t) => {
  const server = echoServer(t);
  const ws = await connect(server);
  const big = Buffer.alloc(200 * 1024, 7);
  const pending = messages(ws, 4);
  ws.send('hello');
  ws.send(Buffer.from([1, 2, 3]));
  ws.send('κόσμε 🎉');
  ws.send(big);
  const got = await pending;
  t.deepEqual(got.map((m) => m.isBinary), [false, true, false, true]);
  t.is(got[0].data.toString(), 'hello');
  t.deepEqual([...got[1].data], [1, 2, 3]);
  t.is(got[2].data.toString(), 'κόσμε 🎉');
  t.true(got[3].data.equals(big));
  ws.close();
  await once(ws, 'close');
  await closeServer(server);
});

test('many messages from many clients all come back in order', async (t) => {
  const server = echoServer(t);
  const clients = await Promise.all(Array.from({ length: 8 }, () => connect(server)));
  await Promise.all(clients.map(async (ws, c) => {
    const pending = messages(ws, 500, 10000);
    for (let i = 0; i < 500; i++) ws.send(`${c}:${i}`);
    const got = await pending;
    t.deepEqual(got.map((m) => m.data.toString()), Array.from({ length: 500 }, (_, i) => `${c}:${i}`));
  }));
  for (const ws of clients) ws.terminate();
  await closeServer(server);
});

test('strings around the 125-byte frame header limit arrive whole, a lone surrogate as U+FFFD', async (t) => {
  const sent = ['', 'a'.repeat(125), 'a'.repeat(126), '€'.repeat(41), '€'.repeat(42), '🎉'.repeat(20), '🎉'.repeat(32), 'x\uD800y'];
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) {
      for (const text of sent) ws.send(text);
    };
  });
  const ws = await connect(server);
  const got = await messages(ws, sent.length);
  t.true(got.every((m) => !m.isBinary));
  t.deepEqual(got.map((m) => m.data.toString()), [...sent.slice(0, -1), 'x\uFFFDy']);
  t.deepEqual(got.map((m) => m.data.length), sent.map((text) => Buffer.byteLength(text)));
  ws.close();
  await once(ws, 'close');
  await closeServer(server);
});
