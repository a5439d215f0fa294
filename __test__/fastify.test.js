'use strict';
// @fastify/websocket on ferrows/ws. The plugin requires ws itself; `replaceWsServer()` (one line, before the
// plugin registers) gives every ws loaded in the process ferrows's server class. Spoken to by ws's client.
const test = require('ava');
const FerrowsWs = require('ferrows/ws');

FerrowsWs.replaceWsServer();

const WebSocket = require('ws');
const Fastify = require('fastify');
const fastifyWebsocket = require('@fastify/websocket');
const { once, messages } = require('./helpers.js');

async function start(t) {
  const app = Fastify();
  await app.register(fastifyWebsocket);
  app.get('/echo/:room', { websocket: true }, (socket, req) => {
    socket.send(`welcome to ${req.params.room} from ${req.socket.remoteAddress}`);
    socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
  });
  app.get('/plain', async () => ({ plain: true }));
  t.teardown(() => app.close());
  await app.listen({ port: 0, host: '127.0.0.1' });
  t.true(app.websocketServer instanceof FerrowsWs.WebSocketServer, "the plugin's server is ferrows's");
  return { app, port: app.server.address().port };
}

test('@fastify/websocket: a route with params, text and binary both ways, plain routes beside it, close', async (t) => {
  const { app, port } = await start(t);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/echo/lobby`);
  const got = messages(ws, 3);
  await once(ws, 'open');
  ws.send('hi');
  ws.send(Buffer.from([1, 2, 3]));
  const [welcome, text, binary] = await got;
  t.is(String(welcome.data), 'welcome to lobby from 127.0.0.1');
  t.deepEqual([String(text.data), text.isBinary], ['hi', false]);
  t.deepEqual([[...binary.data], binary.isBinary], [[1, 2, 3], true]);
  const reply = await app.inject({ method: 'GET', url: '/plain' });
  t.deepEqual(reply.json(), { plain: true });
  t.is((await fetch(`http://127.0.0.1:${port}/plain`)).status, 200);
  const [code] = await Promise.all([once(ws, 'close'), app.close()]);
  // The plugin's preClose calls close() without a code on every client: a close frame without a status (1005).
  t.is(Array.isArray(code) ? code[0] : code, 1005);
});

test('@fastify/websocket: a path without a websocket route is refused before the upgrade', async (t) => {
  const { port } = await start(t);
  const ws = new WebSocket(`ws://127.0.0.1:${port}/nowhere`);
  ws.on('error', () => {});
  const [, res] = await once(ws, 'unexpected-response');
  t.is(res.statusCode, 404);
});
