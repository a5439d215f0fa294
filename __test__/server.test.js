'use strict';
const test = require('ava');
const path = require('path');
const { execFile } = require('child_process');
const { WebSocket: Ferrows } = require('..');
const { startServer, connect, messages, once, closeServer } = require('./helpers.js');

test('options are checked: no options, wrong types and unusable ports are errors, never crashes', (t) => {
  t.throws(() => Ferrows.Server(), { message: 'Must specify options for server.' });
  t.throws(() => Ferrows.Server({ port: '80' }), { instanceOf: TypeError, message: /'port'/ });
  t.throws(() => Ferrows.Server({ port: 0, masking: 'yes' }), { instanceOf: TypeError, message: /'masking'/ });
  t.throws(() => Ferrows.Server({ port: 0, maxPayload: -1 }), { instanceOf: RangeError });
  t.throws(() => Ferrows.Server({ port: 70000 }), { instanceOf: RangeError });
  t.throws(() => Ferrows.Server({ port: 0, cert: 'x', key: 'y' }), { message: /TLS/ });
  const first = startServer(t);
  t.throws(() => Ferrows.Server({ address: '127.0.0.1', port: first.port }), { message: /cannot listen/ });
  t.throws(() => Ferrows.Server({ address: 'no.such.host.invalid', port: 0 }), { message: /cannot resolve/ });
  t.throws(() => first.on('connect', 'nope'), { message: 'Argument is not a function' });
});

test('Server(url), Server(port, options), Server(options, onconnect) and new Server() all listen', async (t) => {
  const byUrl = Ferrows.Server('ws://127.0.0.1:0/');
  const withNew = new Ferrows.Server({ address: '127.0.0.1', port: 0 });
  let connected = false;
  const withCallback = Ferrows.Server({ address: '127.0.0.1', port: 0 }, function (ws) { connected = this === ws; });
  for (const s of [byUrl, withNew, withCallback]) {
    t.is(s.readyState, Ferrows.readyStates.LISTENING);
    t.true(s.port > 0);
    t.like(s.address(), { address: '127.0.0.1', family: 'IPv4', port: s.port });
  }
  t.true(withNew instanceof Ferrows.Server);
  const ws = await connect(withCallback);
  t.true(connected);
  ws.terminate();
  await Promise.all([byUrl, withNew, withCallback].map(closeServer));
});

test('the default address takes IPv6 and IPv4 clients', async (t) => {
  const server = Ferrows.Server({ port: 0 });
  t.teardown(() => server.close());
  server.onconnect = function (ws) { ws.send(ws.connection.remoteAddress); };
  for (const host of ['127.0.0.1', '[::1]']) {
    const WebSocket = require('ws');
    const ws = new WebSocket(`ws://${host}:${server.port}/`);
    const [data] = await once(ws, 'message');
    t.is(String(data), host.replace(/[[\]]/g, ''));
    ws.terminate();
  }
  await closeServer(server);
});

test('events can be set as on(name, fn), onX = fn and onX(fn); connection handlers accumulate', async (t) => {
  const calls = [];
  const server = startServer(t, {}, (s) => {
    s.onaccept((ws) => calls.push('accept'));
    s.onconnect = function (ws) {
      calls.push('connect');
      ws.on('message', (m) => calls.push(`on ${m}`));
      ws.onmessage = (m) => calls.push(`onmessage ${m}`);
      ws.onmessage((m) => { calls.push(`called ${m}`); ws.send('done'); });
    };
  });
  const ws = await connect(server);
  const reply = messages(ws, 1);
  ws.send('x');
  await reply;
  t.deepEqual(calls, ['accept', 'connect', 'on x', 'onmessage x', 'called x']);
  ws.terminate();
  await closeServer(server);
});

test('a closed connection still answers for its request; once collected, its native handle is released', async (t) => {
  // The gc() of --expose-gc, in this process: the handle is released when the connection's object is collected.
  require('v8').setFlagsFromString('--expose-gc');
  const gc = require('vm').runInNewContext('gc');
  const native = require('../lib/addon.js').loadAddon();
  let seen;
  const server = startServer(t, {}, (s) => {
    s.onconnect = (ws) => ws.on('close', (code) => {
      seen = { code, url: ws.url, header: ws.headers['X-Test'], address: ws.connection.remoteAddress, handle: ws._native._id };
    });
  });
  const client = await connect(server, '/room?x=1', { headers: { 'X-Test': 'kept' } });
  client.close(1000);
  await once(client, 'close');
  for (let i = 0; i < 100 && !seen; i++) await new Promise((resolve) => setTimeout(resolve, 20));
  t.like(seen, { code: 1000, url: '/room', header: 'kept', address: '127.0.0.1' });
  t.is(native.connectionReadyState(seen.handle), 3);
  // Nothing holds the connection's object now; its handle goes once it is collected.
  let released = false;
  for (let i = 0; i < 100 && !released; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
    try {
      native.connectionReadyState(seen.handle);
    } catch (err) {
      released = /not a handle/.test(err.message);
    }
  }
  t.true(released);
});

test('an exception in a handler is an uncaught exception, and the rest of the batch is still delivered', async (t) => {
  const { stdout, code } = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, 'fixtures', 'throwing-handler.js')], { timeout: 15000 },
      (err, out) => resolve({ stdout: out, code: err ? err.code : 0 }));
  });
  t.is(code, 0);
  t.regex(stdout, /uncaught: boom 0/);
  t.regex(stdout, /delivered 20/);
});

test('the process exits on its own once the server is closed and its connections are gone', async (t) => {
  const started = Date.now();
  const { stdout, code } = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, 'fixtures', 'exit-on-close.js')], { timeout: 15000 },
      (err, out) => resolve({ stdout: out, code: err ? err.code ?? err.signal : 0 }));
  });
  t.is(code, 0);
  t.regex(stdout, /echoed hello/);
  t.true(Date.now() - started < 15000);
});
