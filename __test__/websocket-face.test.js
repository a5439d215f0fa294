'use strict';
// ferrows/websocket (WebSocket-Node's server side), spoken to by WebSocket-Node's own client.
const test = require('ava');
const http = require('http');
const https = require('https');
const WebSocketNode = require('websocket');
const ferrows = require('ferrows/websocket');
const { selfSigned } = require('./certs.js');

function listen(t, server) {
  t.teardown(() => server.close());
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server.address().port)));
}

/** Connects WebSocket-Node's client; resolves with the connection, or rejects with the failure. */
function connect(address, protocols, options = {}) {
  return new Promise((resolve, reject) => {
    const client = new WebSocketNode.client(options);
    client.on('connect', resolve);
    client.on('connectFailed', reject);
    client.connect(address, protocols);
  });
}

function nextMessage(connection) {
  return new Promise((resolve) => connection.once('message', resolve));
}

test('accept with a requested protocol; sendUTF, sendBytes and send(number); connect and close events', async (t) => {
  const server = http.createServer();
  const port = await listen(t, server);
  const wss = new ferrows.server({ httpServer: server });
  t.teardown(() => wss.shutDown());
  const closed = new Promise((resolve) => wss.on('close', (conn, code, description) => resolve([code, description])));
  let connected = 0;
  wss.on('connect', () => { connected++; });
  wss.on('request', (request) => {
    t.deepEqual(request.requestedProtocols, ['chat', 'other']);
    t.is(request.resource, '/room?x=1');
    t.is(request.resourceURL.query.x, '1');
    t.deepEqual(request.cookies, []);
    const conn = request.accept('chat', request.origin);
    t.is(conn.protocol, 'chat');
    conn.on('message', (m) => {
      if (m.type === 'utf8') conn.send(42);
      else conn.sendBytes(Buffer.concat([m.binaryData, m.binaryData]));
    });
  });
  const conn = await connect(`ws://127.0.0.1:${port}/room?x=1`, ['chat', 'other'], { }).catch((e) => { throw e; });
  t.is(conn.protocol, 'chat');
  conn.sendUTF('ping me');
  t.deepEqual(await nextMessage(conn), { type: 'utf8', utf8Data: '42' });
  conn.sendBytes(Buffer.from([1, 2]));
  t.deepEqual([...(await nextMessage(conn)).binaryData], [1, 2, 1, 2]);
  conn.close(1000, 'bye');
  t.deepEqual(await closed, [1000, 'bye']);
  t.is(connected, 1);
});

test('reject, double resolution, and a protocol the client did not offer', async (t) => {
  const server = http.createServer();
  const port = await listen(t, server);
  const wss = new ferrows.server({ httpServer: server });
  t.teardown(() => wss.shutDown());
  wss.on('request', (request) => {
    if (request.resource === '/reject') {
      request.reject(401, 'Not you', { 'X-Extra': 'yes' });
      t.throws(() => request.accept(), { message: 'WebSocketRequest may only be accepted or rejected one time.' });
      return;
    }
    t.throws(() => request.accept('unoffered'), { message: 'Specified protocol was not requested by the client.' });
    t.throws(() => request.reject(), { message: 'WebSocketRequest may only be accepted or rejected one time.' });
  });
  const rejected = await connect(`ws://127.0.0.1:${port}/reject`).then(() => null, (err) => String(err));
  t.regex(rejected, /401/);
  t.regex(rejected, /Not you/);
  const mismatch = await connect(`ws://127.0.0.1:${port}/proto`, ['offered']).then(() => null, (err) => String(err));
  t.regex(mismatch, /500/);
});

test('no request listener: 404; autoAcceptConnections accepts', async (t) => {
  const server = http.createServer();
  const port = await listen(t, server);
  const wss = new ferrows.server({ httpServer: server });
  t.teardown(() => wss.shutDown());
  const refused = await connect(`ws://127.0.0.1:${port}/`).then(() => null, (err) => String(err));
  t.regex(refused, /404/);
  wss.config.autoAcceptConnections = true;
  const conn = await connect(`ws://127.0.0.1:${port}/`);
  t.true(conn.connected);
  conn.close();
});

test('an http.Server and an https.Server share one WebSocketServer; broadcastUTF reaches both', async (t) => {
  const cert = selfSigned('localhost');
  const plain = http.createServer();
  const secure = https.createServer({ cert: cert.cert, key: cert.key });
  const [plainPort, securePort] = [await listen(t, plain), await listen(t, secure)];
  const wss = new ferrows.server({ httpServer: [plain, secure], autoAcceptConnections: true });
  t.teardown(() => wss.shutDown());
  const a = await connect(`ws://127.0.0.1:${plainPort}/`);
  const b = await connect(`wss://localhost:${securePort}/`, undefined, { tlsOptions: { ca: cert.cert } });
  while (wss.connections.length < 2) await new Promise((r) => setImmediate(r));
  const got = Promise.all([nextMessage(a), nextMessage(b)]);
  wss.broadcastUTF('to both');
  t.deepEqual((await got).map((m) => m.utf8Data), ['to both', 'to both']);
  a.close();
  b.close();
});

test('a ping listener can cancel the automatic pong; drop() closes with the given code', async (t) => {
  const server = http.createServer();
  const port = await listen(t, server);
  const wss = new ferrows.server({ httpServer: server, autoAcceptConnections: true });
  t.teardown(() => wss.shutDown());
  const serverSide = new Promise((resolve) => wss.on('connect', resolve));
  const conn = await connect(`ws://127.0.0.1:${port}/`);
  const sc = await serverSide;
  sc.on('ping', (cancel, data) => { if (String(data) === 'no') cancel(); });
  const pongs = [];
  conn.on('pong', (data) => pongs.push(String(data)));
  conn.ping('no');
  conn.ping('yes');
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(pongs, ['yes']);
  const closed = new Promise((resolve) => sc.on('close', (code, description) => resolve([code, description])));
  sc.drop(4000, 'dropped');
  t.deepEqual(await closed, [4000, 'dropped']);
});

test('the router sends requests to the handler for their path and protocol', async (t) => {
  const server = http.createServer();
  const port = await listen(t, server);
  const wss = new ferrows.server({ httpServer: server });
  t.teardown(() => wss.shutDown());
  const router = new ferrows.router();
  router.attachServer(wss);
  // Handlers answer the client's first message (a message sent with the 101 could beat the client's listener).
  const answer = (text) => (request) => { const conn = request.accept(); conn.on('message', () => conn.sendUTF(text)); };
  router.mount('/chat', 'chat', answer('chat handler'));
  router.mount(/^\/any/, answer('regex handler'));
  const chat = await connect(`ws://127.0.0.1:${port}/chat`, ['chat']);
  chat.sendUTF('hi');
  t.is((await nextMessage(chat)).utf8Data, 'chat handler');
  const any = await connect(`ws://127.0.0.1:${port}/anything`);
  any.sendUTF('hi');
  t.is((await nextMessage(any)).utf8Data, 'regex handler');
  const none = await connect(`ws://127.0.0.1:${port}/nowhere`).then(() => null, (err) => String(err));
  t.regex(none, /404/);
  chat.close();
  any.close();
});

test('the client classes are not provided', (t) => {
  t.throws(() => ferrows.client, { message: /keep require\('websocket'\)\.client/ });
  t.throws(() => ferrows.w3cwebsocket, { message: /w3cwebsocket/ });
  t.is(ferrows.connection.CLOSE_REASON_NORMAL, 1000);
  t.is(ferrows.connection.CLOSE_DESCRIPTIONS[1009], 'Message too big');
});

test('keepalive: a responsive client stays; one that goes silent is dropped after the grace period', async (t) => {
  const server = http.createServer();
  const port = await listen(t, server);
  const wss = new ferrows.server({ httpServer: server, autoAcceptConnections: true, keepaliveInterval: 100, keepaliveGracePeriod: 150 });
  t.teardown(() => wss.shutDown());
  const closes = [];
  wss.on('close', (conn, code, description) => closes.push([conn.remoteAddress, code, description]));
  const alive = await connect(`ws://127.0.0.1:${port}/`);
  const silent = await connect(`ws://127.0.0.1:${port}/`);
  let pings = 0;
  alive.on('ping', () => { pings++; });
  silent.socket.pause(); // reads nothing, so it never answers
  await new Promise((r) => setTimeout(r, 700));
  t.true(pings >= 3, `pings: ${pings}`);
  t.true(alive.connected);
  t.deepEqual(closes, [['127.0.0.1', 1006, 'Peer not responding.']]);
  alive.close();
  silent.socket.destroy();
});

test('outgoing messages are fragmented at fragmentationThreshold; frames over maxReceivedFrameSize close with 1009', async (t) => {
  const server = http.createServer();
  const port = await listen(t, server);
  const wss = new ferrows.server({ httpServer: server, autoAcceptConnections: true, fragmentationThreshold: 16384, maxReceivedFrameSize: 1000 });
  t.teardown(() => wss.shutDown());
  wss.on('connect', (conn) => conn.on('message', (m) => conn.sendUTF(m.utf8Data.repeat(1000))));
  const frames = await connect(`ws://127.0.0.1:${port}/`, undefined, { assembleFragments: false });
  const seen = [];
  const done = new Promise((resolve) => frames.on('frame', (frame) => { seen.push([frame.opcode, frame.fin, frame.length]); if (frame.fin) resolve(); }));
  frames.sendUTF('x'.repeat(40));
  await done;
  t.deepEqual(seen, [[1, false, 16384], [0, false, 16384], [0, true, 40000 - 32768]]);
  frames.close();
  const big = await connect(`ws://127.0.0.1:${port}/`, undefined, { fragmentOutgoingMessages: false });
  const closed = new Promise((resolve) => big.on('close', (code) => resolve(code)));
  big.sendBytes(Buffer.alloc(2000));
  t.is(await closed, 1009);
});

test('a client gone before accept() still gets a connection, a connect event and a 1006 close, no error', async (t) => {
  const net = require('net');
  const server = http.createServer();
  const port = await listen(t, server);
  const wss = new ferrows.server({ httpServer: server });
  t.teardown(() => wss.shutDown());
  const result = new Promise((resolve) => {
    wss.on('request', (request) => setTimeout(() => {
      const conn = request.accept();
      const errors = [];
      conn.on('error', (e) => errors.push(e));
      conn.on('close', (code, description) => resolve({ code, description, errors, listed: wss.connections.includes(conn) }));
    }, 100));
  });
  let connected = false;
  wss.on('connect', () => { connected = true; });
  const socket = net.connect(port, '127.0.0.1', () => {
    socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n');
    setTimeout(() => socket.end(), 20);
  });
  socket.on('error', () => {});
  const { code, description, errors } = await result;
  t.deepEqual([code, description, errors.length], [1006, 'TCP connection lost before handshake completed.', 0]);
  t.true(connected);
});

test('assembleFragments: false hands each frame to the frame event', async (t) => {
  const server = http.createServer();
  const port = await listen(t, server);
  const wss = new ferrows.server({ httpServer: server, autoAcceptConnections: true, assembleFragments: false });
  t.teardown(() => wss.shutDown());
  const frames = new Promise((resolve) => {
    wss.on('connect', (conn) => {
      const seen = [];
      conn.on('message', () => t.fail('no assembled messages'));
      conn.on('frame', (frame) => {
        seen.push([frame.opcode, frame.fin, frame.binaryPayload.toString()]);
        if (frame.fin) resolve(seen);
      });
    });
  });
  const client = await connect(`ws://127.0.0.1:${port}/`, undefined, { fragmentationThreshold: 4 });
  client.sendUTF('abcdefghij');
  t.deepEqual(await frames, [[1, false, 'abcd'], [0, false, 'efgh'], [0, true, 'ij']]);
  client.close();
});
