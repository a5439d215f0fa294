'use strict';
// node-websocket-server's API, with its own example servers' style, spoken to by the ws client.
const test = require('ava');
const net = require('net');
const WebSocket = require('ws');
const nws = require('ferrows/node-websocket-server');
const { once, messages, ask } = require('./helpers.js');

async function start(t, options) {
  const server = nws.createServer(options);
  t.teardown(() => server.close());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: server.server.address().port };
}

test('the echo server of the library style: addListener, connection ids, stateChange, disconnect', async (t) => {
  const { server, port } = await start(t);
  const states = [];
  const disconnected = new Promise((resolve) => server.addListener('disconnect', (conn) => resolve(conn.id)));
  const closedConn = new Promise((resolve) => server.addListener('close', (conn) => resolve(conn && conn.id)));
  server.addListener('connection', (conn) => {
    conn.addListener('stateChange', (state, previous) => states.push([state, previous]));
    conn.addListener('message', (message) => conn.send(`${conn.id}: ${message}`));
  });
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await once(ws, 'open');
  t.regex(await ask(ws, 'hello'), /^\d+: hello$/);
  ws.close();
  const id = await disconnected;
  t.true(Number.isInteger(id));
  t.is(await closedConn, id);
  t.deepEqual(states, [[5, 4]]);
});

test('a chat server: conn.broadcast skips the sender, server.broadcast and send(id) reach the right clients', async (t) => {
  const { server, port } = await start(t);
  const ids = [];
  server.on('connection', (conn) => {
    ids.push(conn.id);
    conn.on('message', (message) => {
      if (message === 'to-all') server.broadcast('everyone');
      else if (message.startsWith('to:')) server.send(Number(message.slice(3)), 'just you');
      else conn.broadcast(`${conn.id} says ${message}`);
    });
  });
  const [a, b, c] = [0, 1, 2].map(() => new WebSocket(`ws://127.0.0.1:${port}/chat`));
  await Promise.all([a, b, c].map((ws) => once(ws, 'open')));
  while (ids.length < 3) await new Promise((r) => setImmediate(r));
  const toB = messages(b, 1);
  const toC = messages(c, 1);
  a.send('hi');
  t.is(String((await toB)[0].data), `${ids[0]} says hi`);
  t.is(String((await toC)[0].data), `${ids[0]} says hi`);
  const all = [a, b, c].map((ws) => messages(ws, 1));
  b.send('to-all');
  for (const got of await Promise.all(all)) t.is(String(got[0].data), 'everyone');
  const only = messages(c, 1);
  a.send(`to:${ids[2]}`);
  t.is(String((await only)[0].data), 'just you');
  for (const ws of [a, b, c]) ws.terminate();
});

test('old draft handshakes get 426 with the version to use; errors bubble to the server', async (t) => {
  const { server, port } = await start(t);
  const answer = await new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(
      'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nSec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n\r\n^n:ds[4U'));
    let data = '';
    socket.on('data', (c) => { data += c; });
    socket.on('close', () => resolve(data));
    socket.on('error', () => {});
  });
  t.regex(answer, /^HTTP\/1\.1 426 Upgrade Required\r\n[\s\S]*Sec-WebSocket-Version: 13\r\n/);
  const errors = [];
  server.on('error', (err) => errors.push(err.message));
  server.on('connection', (conn) => conn.emit('error', new Error('from a connection')));
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await once(ws, 'open');
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(errors, ['from a connection']);
  ws.terminate();
});

test('origin and subprotocol options are enforced', async (t) => {
  const { port } = await start(t, { origin: ['https://good.example'], subprotocol: 'chat' });
  const refused = await new Promise((resolve) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { origin: 'https://evil.example' });
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('error', () => {});
  });
  t.is(refused, 403);
  const ok = new WebSocket(`ws://127.0.0.1:${port}/`, ['chat', 'other'], { origin: 'https://good.example' });
  await once(ok, 'open');
  t.is(ok.protocol, 'chat');
  ok.terminate();
});
