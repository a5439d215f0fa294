'use strict';
const test = require('ava');
const net = require('net');
const { startServer, connect, once, messages, closeServer, WebSocket } = require('./helpers.js');

/** Sends raw bytes and collects everything the server answers until it closes the connection. */
function rawExchange(port, bytes, ms = 5000) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no close from server')); }, ms);
    socket.on('connect', () => socket.write(bytes));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('latin1')); });
  });
}

const upgrade = (extra = '', first = 'GET / HTTP/1.1') =>
  `${first}\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
  `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`;

test('bad upgrade requests get an HTTP error before any upgrade', async (t) => {
  const server = startServer(t);
  const cases = [
    [upgrade('Sec-WebSocket-Version: 7\r\n'), /^HTTP\/1\.1 426 [^\r]*\r\n[\s\S]*Sec-WebSocket-Version: 13, 8\r\n/],
    [upgrade(''), /^HTTP\/1\.1 426 /],
    [upgrade('Sec-WebSocket-Version: 13\r\n', 'POST / HTTP/1.1'), /^HTTP\/1\.1 405 /],
    [upgrade('Sec-WebSocket-Version: 13\r\n').replace('dGhlIHNhbXBsZSBub25jZQ==', 'short'), /^HTTP\/1\.1 400 [\s\S]*Sec-WebSocket-Key/],
    [upgrade('Sec-WebSocket-Version: 13\r\n').replace('Connection: Upgrade', 'Connection: keep-alive'), /^HTTP\/1\.1 400 /],
    ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', /^HTTP\/1\.1 426 Upgrade Required\r\n/],
    [`GET / HTTP/1.1\r\nX-Big: ${'a'.repeat(20000)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
    ['\x16\x03\x01garbage\r\n\r\n', /^HTTP\/1\.1 400 /],
  ];
  for (const [request, expected] of cases) {
    const answer = await rawExchange(server.port, request);
    t.regex(answer, expected, JSON.stringify(request.slice(0, 60)));
  }
  await closeServer(server);
});

test('a client that never finishes its request is dropped after the handshake timeout', async (t) => {
  const server = startServer(t, { handshakeTimeout: 300 });
  const socket = net.connect(server.port, '127.0.0.1');
  socket.write('GET / HTTP/1.1\r\nHost: x\r\n');
  const started = Date.now();
  await once(socket, 'close', 5000);
  t.true(Date.now() - started < 5000);
  await closeServer(server);
});

test('accept handler sees url, headers, CGI, protocols and connection; this.accept picks the protocol', async (t) => {
  let seen;
  const server = startServer(t, {}, (s) => {
    s.onaccept = function (ws) {
      seen = { url: ws.url, headers: ws.headers, CGI: ws.CGI, protocols: ws.protocols, connection: ws.connection, self: this };
      this.accept('beta');
    };
  });
  const ws = await connect(server, '/room/7?user=ann&x=%20y', { protocols: ['alpha', 'beta'], headers: { 'X-Custom-Case': 'Yes' } });
  t.is(ws.protocol, 'beta');
  t.is(seen.url, '/room/7');
  t.deepEqual(seen.CGI, { user: 'ann', x: ' y' });
  t.deepEqual(seen.protocols, ['alpha', 'beta']);
  t.is(seen.headers['X-Custom-Case'], 'Yes');
  t.is(seen.self, server);
  t.is(seen.connection.remoteAddress, '127.0.0.1');
  t.is(seen.connection.localPort, server.port);
  t.is(seen.connection.hostname, '127.0.0.1');
  t.is(seen.connection.remoteFamily, 'IPv4');
  ws.terminate();
  await closeServer(server);
});

function expectRefusal(server, path = '/') {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`);
    ws.on('open', () => reject(new Error('upgrade was accepted')));
    ws.on('unexpected-response', (req, res) => { resolve(res.statusCode); req.destroy(); });
    ws.on('error', () => {});
  });
}

test('reject refuses with the status given, 403 by default; a rejected Promise refuses too', async (t) => {
  const server = startServer(t, {}, (s) => {
    s.onaccept = function (ws) {
      if (ws.url === '/missing') return this.reject(404);
      if (ws.url === '/default') return this.reject();
      if (ws.url === '/later') return new Promise((resolve) => setTimeout(resolve, 50));
      return Promise.reject(new Error('no'));
    };
    s.onconnect = function (ws) { ws.send(`hi ${ws.url}`); };
  });
  t.is(await expectRefusal(server, '/missing'), 404);
  t.is(await expectRefusal(server, '/default'), 403);
  t.is(await expectRefusal(server, '/refused'), 403);
  const ws = await connect(server, '/later');
  t.is(String((await messages(ws, 1))[0].data), 'hi /later');
  ws.terminate();
  await closeServer(server);
});

test('accept and reject throw outside the accept event', (t) => {
  const server = startServer(t);
  t.throws(() => server.accept(), { message: /outside of accept callback/ });
  t.throws(() => server.reject(), { message: /outside of accept callback/ });
  server.close();
});

test('block() keeps the upgrade pending until resume()', async (t) => {
  let held;
  const server = startServer(t, {}, (s) => {
    s.onaccept = function (ws) { ws.block(); held = ws; };
  });
  const client = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  let opened = false;
  client.on('open', () => { opened = true; });
  await new Promise((r) => setTimeout(r, 200));
  t.false(opened);
  t.is(held.readyState, 0);
  held.resume();
  await once(client, 'open');
  client.terminate();
  await closeServer(server);
});

test('accepting without naming a protocol selects the first one the client offered, as ws does', async (t) => {
  const server = startServer(t, {}, (s) => {
    s.onaccept = function (ws) {
      if (ws.url === '/plain') return this.accept();
      if (ws.url === '/later') return Promise.resolve();
      return undefined; // returning without a decision accepts too
    };
  });
  for (const path of ['/plain', '/later', '/implicit']) {
    const ws = await connect(server, path, { protocols: ['alpha', 'beta'] });
    t.is(ws.protocol, 'alpha', path);
    ws.close();
  }
  const none = await connect(server, '/plain');
  t.is(none.protocol, '', 'no protocol offered, none selected');
  none.close();
});
