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
