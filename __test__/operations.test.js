'use strict';
// Running in production: stats(), connection limits, rate limits, idle timeouts and lifetimes, local presence,
// on the sack face and (same option names) the ws face. Clients are ws's, or raw sockets for bad requests.
const test = require('ava');
const http = require('http');
const FerrowsWs = require('ferrows/ws');
const { startServer, once, connect, messages, ask, WebSocket } = require('./helpers.js');

const echo = (ws) => { ws.onmessage = (msg) => ws.send(msg); };

/** Resolves with the status and Retry-After of an upgrade the server refuses. */
function refusal(url) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.on('open', () => reject(new Error('opened')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (req, res) => resolve({ status: res.statusCode, retryAfter: res.headers['retry-after'] }));
  });
}

const closeOf = async (ws) => {
  const [code, reason] = await once(ws, 'close', 10000);
  return [code, String(reason)];
};

test('stats() counts connections, refusals, messages and bytes both ways, and close codes', async (t) => {
  const server = startServer(t, {}, (s) => {
    s.onaccept = function (ws) { if (ws.url === '/no') this.reject(403); };
    s.onconnect = echo;
  });
  const ws = await connect(server);
  for (const text of ['one', 'two', 'three']) t.is(await ask(ws, text), text);
  t.is(await ask(ws, Buffer.alloc(1000)), '\0'.repeat(1000));
  t.is((await refusal(`ws://127.0.0.1:${server.port}/no`)).status, 403);
  const bad = await new Promise((resolve) => {
    http.get({ port: server.port, host: '127.0.0.1', headers: { Connection: 'Upgrade', Upgrade: 'websocket' } }, resolve);
  });
  t.is(bad.statusCode, 400, 'no Sec-WebSocket-Key');
  ws.close(4000, 'done');
  await once(ws, 'close');
  let stats = server.stats();
  for (let i = 0; i < 100 && stats.connections > 0; i++) {
    await new Promise((r) => setTimeout(r, 20));
    stats = server.stats();
  }
  t.like(stats, {
    connections: 0, accepted: 1, messagesIn: 4, bytesIn: 3 + 3 + 5 + 1000, messagesOut: 4, bytesOut: 1011,
    refused: { invalid: 1, limit: 0, application: 1, closing: 0 },
  });
  t.deepEqual(stats.closeCodesReceived, [{ code: 4000, count: 1 }]);
  t.is(stats.backplane, undefined);
});

test('maxConnections and maxConnectionsPerIp: 503 with Retry-After before any JavaScript runs', async (t) => {
  let accepts = 0;
  const server = startServer(t, { maxConnections: 2 }, (s) => {
    s.onaccept = () => { accepts++; };
    s.onconnect = echo;
  });
  const a = await connect(server);
  await connect(server);
  t.deepEqual(await refusal(`ws://127.0.0.1:${server.port}/`), { status: 503, retryAfter: '5' });
  t.is(accepts, 2);
  a.close();
  await once(a, 'close');
  while (server.stats().connections > 1) await new Promise((r) => setTimeout(r, 10));
  await connect(server); // the place came back
  t.is(server.stats().refused.limit, 1);

  const perIp = startServer(t, { maxConnectionsPerIp: 1 });
  await connect(perIp);
  t.is((await refusal(`ws://127.0.0.1:${perIp.port}/`)).status, 503);
});

test('maxMessagesPerSecond closes a flooding client with 1008; rateLimit "pause" slows it and loses nothing', async (t) => {
  const closing = startServer(t, { maxMessagesPerSecond: 10 }, (s) => { s.onconnect = () => {}; });
  const flooder = await connect(closing);
  for (let i = 0; i < 100; i++) flooder.send('x');
  t.deepEqual(await closeOf(flooder), [1008, 'rate limit']);

  const pausing = startServer(t, { maxBytesPerSecond: 2000, rateLimit: 'pause' }, (s) => { s.onconnect = echo; });
  const sender = await connect(pausing);
  const back = messages(sender, 30, 10000);
  for (let i = 0; i < 30; i++) sender.send(String(i).padStart(100, '.'));
  t.deepEqual((await back).map((m) => String(m.data).replace(/^\.+/, '')), Array.from({ length: 30 }, (_, i) => String(i)));
  t.true(pausing.stats().rateLimited > 0, 'the reader waited for its budget at least once');
});

test('idleTimeout closes a silent connection with 1001; with automatic pings a live client stays', async (t) => {
  const silent = startServer(t, { idleTimeout: 0.3, sendPingsAutomatically: false });
  const quiet = await connect(silent);
  t.deepEqual(await closeOf(quiet), [1001, 'idle timeout']);

  const pinging = startServer(t, { idleTimeout: 0.3 }, (s) => { s.onconnect = echo; });
  const live = await connect(pinging);
  let pings = 0;
  live.on('ping', () => { pings++; });
  let closed = false;
  live.on('close', () => { closed = true; });
  while (pings < 4) await once(live, 'ping');
  t.false(closed, "the client's pongs count as life: four idle periods later it is still open");
  t.is(await ask(live, 'still here'), 'still here');
});

test('maxLifetime closes a connection with 1001 however busy it is', async (t) => {
  const server = startServer(t, { maxLifetime: 0.005 }, (s) => { s.onconnect = echo; }); // 300 ms
  const ws = await connect(server);
  const closed = closeOf(ws);
  const timer = setInterval(() => { if (ws.readyState === WebSocket.OPEN) ws.send('busy'); }, 20);
  t.teardown(() => clearInterval(timer));
  t.deepEqual(await closed, [1001, 'max lifetime']);
});

test('subscribers(topic) and topicList() count this process\'s subscriptions', async (t) => {
  const server = startServer(t, {}, (s) => {
    s.onconnect = (ws) => { ws.onmessage = (topic) => { ws.subscribe(topic); ws.send('ok'); }; };
  });
  const a = await connect(server);
  const b = await connect(server);
  await ask(a, 'news');
  await ask(b, 'news');
  await ask(b, 'sport');
  t.is(server.subscribers('news'), 2);
  t.is(server.subscribers('weather'), 0);
  t.deepEqual(server.topicList(), ['news', 'sport']);
  b.close();
  await once(b, 'close');
  while (server.subscribers('news') > 1) await new Promise((r) => setTimeout(r, 10));
  t.deepEqual(server.topicList(), ['news']);
});

test('the ws face takes the same option names and has stats()', async (t) => {
  const wss = new FerrowsWs.WebSocketServer({ port: 0, host: '127.0.0.1', maxConnections: 1, idleTimeout: 0.2, sendPingsAutomatically: false });
  t.teardown(() => wss.close());
  await once(wss, 'listening');
  const url = `ws://127.0.0.1:${wss.address().port}/`;
  const ws = new WebSocket(url);
  await once(ws, 'open');
  t.is((await refusal(url)).status, 503);
  t.deepEqual(await closeOf(ws), [1001, 'idle timeout']);
  t.like(wss.stats(), { accepted: 1, refused: { limit: 1 } });
  t.throws(() => new FerrowsWs.WebSocketServer({ noServer: true, maxConnections: -1 }), { message: /maxConnections/ });
  t.throws(() => new FerrowsWs.WebSocketServer({ noServer: true, rateLimit: 'slow' }), { message: /rateLimit/ });
});

test('drain() on one server: connections close with the code given, spread over `within`, then it resolves', async (t) => {
  const server = startServer(t, {}, (s) => { s.onconnect = echo; });
  const clients = await Promise.all(Array.from({ length: 20 }, () => connect(server)));
  const closes = clients.map((ws) => closeOf(ws).then((c) => [...c, Date.now()]));
  const started = Date.now();
  await server.drain({ code: 4001, reason: 'moving', within: 400 });
  const results = await Promise.all(closes);
  t.true(results.every(([code, reason]) => code === 4001 && reason === 'moving'));
  const times = results.map(([, , at]) => at - started).sort((x, y) => x - y);
  t.true(times[times.length - 1] > times[0], 'not all in the same instant');
  t.is(server.stats().connections, 0);
  await t.throwsAsync(() => new Promise((resolve, reject) => {
    const late = new WebSocket(`ws://127.0.0.1:${server.port}/`);
    late.on('open', resolve);
    late.on('error', reject);
  }), undefined, 'the listener is closed');
  t.is(await server.drain(), undefined, 'draining a drained server resolves');
});

test('http.Server path: the ws face drains too (no more upgrades, connections close, resolves)', async (t) => {
  const httpServer = http.createServer();
  await new Promise((r) => httpServer.listen(0, '127.0.0.1', r));
  t.teardown(() => httpServer.close());
  const wss = new FerrowsWs.WebSocketServer({ server: httpServer });
  const url = `ws://127.0.0.1:${httpServer.address().port}/`;
  const ws = new WebSocket(url);
  await once(ws, 'open');
  const closed = closeOf(ws);
  await wss.drain({ within: 0 });
  t.deepEqual(await closed, [1001, 'server restarting']);
});
