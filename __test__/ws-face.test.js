'use strict';
// The same scenarios against the real `ws` server and `ferrows/ws`: the face must behave as ws does.
const test = require('ava');
const http = require('http');
const WebSocket = require('ws');
const FerrowsWs = require('ferrows/ws');
const { once, messages, ask } = require('./helpers.js');
const { rawConnect } = require('./raw.js');

const IMPLEMENTATIONS = [['ws', WebSocket], ['ferrows/ws', FerrowsWs]];

function both(title, fn) {
  for (const [name, Impl] of IMPLEMENTATIONS) test(`${name}: ${title}`, (t) => fn(t, Impl));
}

async function listen(t, Impl, options = {}) {
  const wss = new Impl.WebSocketServer({ port: 0, host: '127.0.0.1', ...options });
  t.teardown(() => { for (const c of wss.clients || []) c.terminate(); wss.close(); });
  await once(wss, 'listening');
  return wss;
}

const url = (wss, path = '/') => `ws://127.0.0.1:${wss.address().port}${path}`;

function refusal(address, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(address, options);
    ws.on('open', () => reject(new Error('opened')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (req, res) => {
      let body = '';
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
  });
}

both('echo keeps text and binary apart; req carries url, headers and the socket address', async (t, Impl) => {
  const wss = await listen(t, Impl);
  wss.on('connection', (ws, req) => {
    ws.on('message', (data, isBinary) => {
      t.true(Buffer.isBuffer(data));
      ws.send(data, { binary: isBinary });
    });
    ws.send(JSON.stringify({ url: req.url, host: req.headers.host, addr: req.socket.remoteAddress, protocol: ws.protocol, state: ws.readyState }));
  });
  const ws = new WebSocket(url(wss, '/a?b=c'));
  const got = messages(ws, 3);
  await once(ws, 'open');
  ws.send('héllo');
  ws.send(Buffer.from([0, 1, 2]));
  const [info, text, binary] = await got;
  const empties = messages(ws, 2);
  ws.send('');
  ws.send(Buffer.alloc(0));
  t.deepEqual((await empties).map((m) => [m.data.length, m.isBinary]), [[0, false], [0, true]]);
  t.deepEqual(JSON.parse(info.data), { url: '/a?b=c', host: `127.0.0.1:${wss.address().port}`, addr: '127.0.0.1', protocol: '', state: 1 });
  t.is(String(text.data), 'héllo');
  t.false(text.isBinary);
  t.deepEqual([...binary.data], [0, 1, 2]);
  t.true(binary.isBinary);
});

both('rejections answer as ws does: version, path, verifyClient sync and async, handleProtocols', async (t, Impl) => {
  const wss = await listen(t, Impl, {
    path: '/only',
    verifyClient: (info, cb) => {
      if (info.req.url.includes('deny')) return cb(false, 403, 'Go away', { 'X-Reason': 'test' });
      return cb(true);
    },
    handleProtocols: (protocols) => (protocols.has('b') ? 'b' : false),
  });
  const bad = await refusal(url(wss, '/only'), { protocolVersion: 8, headers: { 'Sec-WebSocket-Version': '9' } }).catch(() => null);
  if (bad) t.is(bad.status, 400);
  t.is((await refusal(url(wss, '/elsewhere'))).status, 400);
  const denied = await refusal(url(wss, '/only?deny'));
  t.deepEqual([denied.status, denied.body, denied.headers['x-reason']], [403, 'Go away', 'test']);
  const ws = new WebSocket(url(wss, '/only'), ['a', 'b']);
  await once(ws, 'open');
  t.is(ws.protocol, 'b');
  ws.terminate();
});

both('close codes and reasons both ways; invalid codes and long reasons throw', async (t, Impl) => {
  const wss = await listen(t, Impl);
  const serverClose = new Promise((resolve) => {
    wss.on('connection', (ws, req) => {
      if (req.url === '/bad-code') {
        t.throws(() => ws.close(1005), { instanceOf: TypeError, message: 'First argument must be a valid error code number' });
        return ws.terminate();
      }
      if (req.url === '/long-reason') {
        t.throws(() => ws.close(1000, 'x'.repeat(124)), { instanceOf: RangeError, message: 'The message must not be greater than 123 bytes' });
        return ws.terminate();
      }
      return ws.on('close', (code, reason) => resolve([code, String(reason), Buffer.isBuffer(reason)]));
    });
  });
  for (const path of ['/bad-code', '/long-reason']) {
    const ws = new WebSocket(url(wss, path));
    ws.on('error', () => {});
    const [code] = await once(ws, 'close');
    t.is(code, 1006);
  }
  const ws = new WebSocket(url(wss));
  await once(ws, 'open');
  ws.close(4001, 'client done');
  const [code, reason] = await once(ws, 'close');
  t.deepEqual([code, String(reason)], [4001, 'client done']);
  t.deepEqual(await serverClose, [4001, 'client done', true]);
  wss.removeAllListeners('connection');
  wss.on('connection', (server) => server.close()); // no code: an empty close frame, 1005 at the client
  const bare = new WebSocket(url(wss));
  const [bareCode] = await once(bare, 'close');
  t.is(bareCode, 1005);
});

both('ping and pong events; server pings are answered by the client', async (t, Impl) => {
  const wss = await listen(t, Impl);
  const pongs = new Promise((resolve) => {
    wss.on('connection', (ws) => {
      ws.on('ping', (data) => ws.send(`ping ${data}`));
      ws.on('pong', (data) => resolve(String(data)));
      ws.ping('hey');
    });
  });
  const ws = new WebSocket(url(wss));
  await once(ws, 'open');
  t.is(await pongs, 'hey');
  const got = messages(ws, 1);
  ws.ping('from client');
  t.is(String((await got)[0].data), 'ping from client');
  ws.terminate();
});

both('clients set, terminate (1006), close() leaving connections open, then the close event', async (t, Impl) => {
  const wss = await listen(t, Impl);
  const conns = {};
  wss.on('connection', (ws, req) => { conns[req.url] = ws; });
  const a = new WebSocket(url(wss, '/a'));
  const b = new WebSocket(url(wss, '/b'));
  await Promise.all([once(a, 'open'), once(b, 'open')]);
  while (!conns['/a'] || !conns['/b']) await new Promise((r) => setImmediate(r));
  t.is(wss.clients.size, 2);
  conns['/a'].terminate();
  const [code] = await once(a, 'close');
  t.is(code, 1006);
  let closed = false;
  wss.close(() => { closed = true; });
  await new Promise((r) => setTimeout(r, 50));
  t.false(closed);
  t.is(b.readyState, WebSocket.OPEN);
  b.close();
  await once(b, 'close');
  await new Promise((r) => setTimeout(r, 50));
  t.true(closed);
});

both('the server option: Node http.Server keeps its plain requests, upgrades come through', async (t, Impl) => {
  const server = http.createServer((req, res) => res.end('plain answer'));
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const wss = new Impl.WebSocketServer({ server });
  t.teardown(() => { wss.close(); server.close(); });
  wss.on('connection', (ws, req) => {
    t.true(req instanceof http.IncomingMessage);
    ws.on('message', (d) => ws.send(`echo ${d}`));
  });
  const port = server.address().port;
  const body = await new Promise((resolve) => http.get({ host: '127.0.0.1', port }, (res) => { let b = ''; res.on('data', (c) => { b += c; }); res.on('end', () => resolve(b)); }));
  t.is(body, 'plain answer');
  const ws = new WebSocket(`ws://127.0.0.1:${port}/x`);
  await once(ws, 'open');
  t.is(await ask(ws, 'over node'), 'echo over node');
  ws.terminate();
});

both('noServer with handleUpgrade; a second handleUpgrade of one socket throws', async (t, Impl) => {
  const wss = new Impl.WebSocketServer({ noServer: true });
  t.throws(() => wss.address(), { message: 'The server is operating in "noServer" mode' });
  const server = http.createServer();
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send('via handleUpgrade');
    });
    t.throws(() => wss.handleUpgrade(req, socket, head, () => {}), { message: /called more than once/ });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => { wss.close(); server.close(); });
  const ws = new WebSocket(`ws://127.0.0.1:${server.address().port}/`);
  const [msg] = await once(ws, 'message');
  t.is(String(msg), 'via handleUpgrade');
  ws.terminate();
});

both('headers event can add to the 101; binaryType arraybuffer; createWebSocketStream', async (t, Impl) => {
  const wss = await listen(t, Impl);
  wss.on('headers', (headers) => headers.push('X-Added: yes'));
  wss.on('connection', (ws) => {
    ws.binaryType = 'arraybuffer';
    ws.once('message', (data, isBinary) => {
      ws.send(`${data instanceof ArrayBuffer} ${isBinary}`);
      const duplex = Impl.createWebSocketStream(ws);
      duplex.on('data', (chunk) => duplex.write(Buffer.concat([Buffer.from('stream:'), chunk])));
    });
  });
  const ws = new WebSocket(url(wss));
  const upgrade = once(ws, 'upgrade');
  await once(ws, 'open');
  t.is((await upgrade).headers['x-added'], 'yes');
  const got = messages(ws, 2);
  ws.send(Buffer.from([7]));
  await new Promise((r) => setTimeout(r, 20));
  ws.send('through');
  const [first, second] = await got;
  t.is(String(first.data), 'true true');
  t.is(String(second.data), 'stream:through');
  ws.terminate();
});

both('options are checked like ws', (t, Impl) => {
  t.throws(() => new Impl.WebSocketServer({}), { instanceOf: TypeError, message: 'One and only one of the "port", "server", or "noServer" options must be specified' });
  t.throws(() => new Impl.WebSocketServer({ port: 0, noServer: true }), { instanceOf: TypeError });
});

both('an https.Server with client certificates: the socket stays in Node, bytes are bridged', async (t, Impl) => {
  const https = require('https');
  const { selfSigned } = require('./certs.js');
  const serverCert = selfSigned('localhost');
  const clientCert = selfSigned('client.test');
  const server = https.createServer({ cert: serverCert.cert, key: serverCert.key, requestCert: true, rejectUnauthorized: true, ca: clientCert.cert });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const wss = new Impl.WebSocketServer({ server });
  t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close(); server.close(); });
  wss.on('connection', (ws, req) => {
    ws.send(`authorized ${req.socket.authorized} ${req.socket.getPeerCertificate().subject.CN}`);
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  const ws = new WebSocket(`wss://127.0.0.1:${server.address().port}/`, { ca: serverCert.cert, cert: clientCert.cert, key: clientCert.key, servername: 'localhost' });
  const got = messages(ws, 3, 10000);
  await once(ws, 'open');
  const big = Buffer.alloc(2 * 1024 * 1024, 9);
  ws.send('over tls');
  ws.send(big);
  const [hello, text, binary] = await got;
  t.is(String(hello.data), 'authorized true client.test');
  t.is(String(text.data), 'over tls');
  t.true(binary.data.equals(big));
  ws.close(1000, 'done');
  const [code, reason] = await once(ws, 'close');
  t.deepEqual([code, String(reason)], [1000, 'done']);
});

both('a unix-socket http.Server', async (t, Impl) => {
  const path = require('path').join(require('os').tmpdir(), `ferrows-${process.pid}-${Impl === WebSocket ? 'ws' : 'f'}.sock`);
  const server = http.createServer();
  await new Promise((r) => server.listen(path, r));
  const wss = new Impl.WebSocketServer({ server });
  t.teardown(() => { for (const c of wss.clients) c.terminate(); wss.close(); server.close(); });
  wss.on('connection', (ws) => ws.on('message', (d) => ws.send(`unix ${d}`)));
  const ws = new WebSocket(`ws+unix://${path}`);
  await once(ws, 'open');
  t.is(await ask(ws, 'hi'), 'unix hi');
  ws.terminate();
});

both('bad upgrades reach wsClientError listeners on the server path', async (t, Impl) => {
  const server = http.createServer();
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const wss = new Impl.WebSocketServer({ server });
  t.teardown(() => { wss.close(); server.close(); });
  const seen = new Promise((resolve) => wss.on('wsClientError', (err, socket) => { socket.destroy(); resolve(err.message); }));
  const socket = require('net').connect(server.address().port, '127.0.0.1', () => socket.write(
    'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: bad\r\nSec-WebSocket-Version: 13\r\n\r\n'));
  socket.on('error', () => {});
  t.is(await seen, 'Missing or invalid Sec-WebSocket-Key header');
});

both('send() with fin: false sends a message in parts; compress: false leaves one uncompressed', async (t, Impl) => {
  const plain = await listen(t, Impl);
  plain.on('connection', (ws) => {
    ws.send('one, ', { fin: false });
    ws.send('two, ', { fin: false });
    ws.send('three', { fin: true });
    ws.send(Buffer.from('bin'), { binary: true, fin: false });
    ws.send(Buffer.from('ary'), { binary: true });
  });
  const peer = await rawConnect(plain.address().port);
  t.teardown(() => peer.socket.destroy());
  t.deepEqual((await peer.frames(5)).map((f) => [f.opcode, f.fin, String(f.payload)]), [
    [1, false, 'one, '], [0, false, 'two, '], [0, true, 'three'], [2, false, 'bin'], [0, true, 'ary'],
  ]);
  const client = new WebSocket(url(plain));
  const parts = messages(client, 2);
  t.deepEqual((await parts).map((m) => String(m.data)), ['one, two, three', 'binary'], "ws's client puts the parts together");
  client.close();

  const deflating = await listen(t, Impl, { perMessageDeflate: { threshold: 0 } });
  deflating.on('connection', (ws) => {
    ws.send('x'.repeat(300), { compress: false });
    ws.send('y'.repeat(300));
  });
  const peer2 = await rawConnect(deflating.address().port, '/', 'Sec-WebSocket-Extensions: permessage-deflate\r\n');
  t.teardown(() => peer2.socket.destroy());
  const [uncompressed, compressed] = await peer2.frames(2);
  t.deepEqual([uncompressed.rsv1, String(uncompressed.payload)], [false, 'x'.repeat(300)]);
  t.true(compressed.rsv1, 'the next message is compressed again');
});
