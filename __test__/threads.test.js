'use strict';
const test = require('ava');
const path = require('path');
const { Worker } = require('worker_threads');
const { WebSocket: Ferrows } = require('..');
const { startServer, connect, messages, ask, once, closeServer, WebSocket } = require('./helpers.js');

const WORKER = path.join(__dirname, 'fixtures', 'worker.js');

async function startWorker(t, workerData) {
  const worker = new Worker(WORKER, { workerData });
  t.teardown(() => worker.terminate());
  const [ready] = await Promise.all([once(worker, 'message')]);
  if (ready !== 'ready') throw new Error(`worker said ${ready}`);
  return worker;
}

test('a pool of 4 workers receives posted sockets round robin', async (t) => {
  const workers = await Promise.all(Array.from({ length: 4 }, () => startWorker(t, { mode: 'echo-pool', name: 'pool' })));
  const server = startServer(t, {}, (s) => {
    s.onaccept = function (ws) { t.true(ws.post('pool')); };
  });
  const clients = [];
  for (let i = 0; i < 8; i++) clients.push(await connect(server, `/c${i}`));
  const owners = [];
  for (const ws of clients) {
    const reply = messages(ws, 1);
    ws.send('hi');
    const [{ data }] = await reply;
    const [owner, text] = String(data).split(':');
    t.is(text, 'hi');
    owners.push(Number(owner));
  }
  const ids = workers.map((w) => w.threadId);
  for (const id of ids) t.is(owners.filter((o) => o === id).length, 2, `worker ${id} got ${owners}`);
  for (const ws of clients) ws.terminate();
  await closeServer(server);
});

test('a Promise-returning accept handler can post the socket', async (t) => {
  await startWorker(t, { mode: 'echo-pool', name: 'later' });
  const server = startServer(t, {}, (s) => {
    s.onaccept = async function (ws) {
      await new Promise((r) => setTimeout(r, 20));
      t.true(ws.post('later'));
    };
  });
  const ws = await connect(server);
  t.regex(await ask(ws, 'x'), /^\d+:x$/);
  ws.terminate();
  await closeServer(server);
});

test('1000 messages across the hand-off of an open socket arrive once each, in order', async (t) => {
  const worker = await startWorker(t, { mode: 'record', name: 'sink' });
  const before = [];
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) {
      ws.onmessage = (m) => {
        before.push(m);
        if (before.length === 100) t.true(ws.post('sink')); // mid-stream, in the middle of a batch
      };
    };
  });
  const ws = await connect(server);
  for (let i = 0; i < 1000; i++) ws.send(String(i));
  ws.send('done');
  const [reply] = await once(ws, 'message');
  t.regex(String(reply), /^worker got \d+$/);
  ws.close();
  const { got } = await once(worker, 'message');
  const all = [...before, ...got];
  t.deepEqual(all, [...Array.from({ length: 1000 }, (_, i) => String(i)), 'done']);
  t.is(before.length, 100);
  await closeServer(server);
});

test('post() after the old object is detached throws; its methods refuse to work', async (t) => {
  await startWorker(t, { mode: 'echo-pool', name: 'detach' });
  let posted;
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) {
      t.true(Ferrows.Thread.post('detach', ws));
      posted = ws;
    };
  });
  const ws = await connect(server);
  await new Promise((r) => setTimeout(r, 50));
  t.throws(() => posted.send('x'), { message: /posted to another thread/ });
  t.throws(() => posted.close(), { message: /posted to another thread/ });
  t.throws(() => posted.post('detach'), { message: /already posted/ });
  t.regex(await ask(ws, 'still works'), /^\d+:still works$/);
  ws.terminate();
  await closeServer(server);
});

test('posting with no receiver returns false and keeps the socket; { queue: true } waits for one', async (t) => {
  let queued;
  const server = startServer(t, {}, (s) => {
    s.onaccept = function (ws) {
      if (ws.url === '/alone') {
        t.false(ws.post('nobody-here'));
        return undefined; // still pending here: accepted normally
      }
      t.true(ws.post('queued-name', { queue: true }));
      queued = ws;
      return undefined;
    };
    s.onconnect = function (ws) { ws.send(`main ${ws.url}`); };
  });
  const alone = await connect(server, '/alone');
  t.is(String((await messages(alone, 1))[0].data), 'main /alone');
  const waiting = new WebSocket(`ws://127.0.0.1:${server.port}/queued`);
  waiting.on('error', () => {});
  await new Promise((r) => setTimeout(r, 100));
  t.truthy(queued);
  t.is(waiting.readyState, WebSocket.CONNECTING);
  await startWorker(t, { mode: 'echo-pool', name: 'queued-name' });
  await once(waiting, 'open');
  t.regex(await ask(waiting, 'late'), /^\d+:late$/);
  alone.terminate();
  waiting.terminate();
  await closeServer(server);
});

test('a worker terminated while holding sockets: they close with 1001 and the server keeps serving', async (t) => {
  const worker = await startWorker(t, { mode: 'hold', name: 'holder' });
  const server = startServer(t, {}, (s) => {
    s.onaccept = function (ws) {
      if (ws.url === '/post') ws.post('holder');
    };
    s.onconnect = function (ws) { ws.onmessage = (m) => ws.send(m); };
  });
  const held = await Promise.all([connect(server, '/post'), connect(server, '/post')]);
  const codes = Promise.all(held.map((ws) => once(ws, 'close').then(([code]) => code)));
  await worker.terminate();
  t.deepEqual(await codes, [1001, 1001]);
  const fresh = await connect(server, '/direct');
  t.is(await ask(fresh, 'alive'), 'alive');
  fresh.terminate();
  await closeServer(server);
});

test('bad arguments are refused with clear errors', async (t) => {
  t.throws(() => Ferrows.Thread.post('x', {}), { instanceOf: TypeError, message: /ferrows server connection/ });
  t.throws(() => Ferrows.Thread.post(42, {}), { instanceOf: TypeError, message: /name must be a string/ });
  t.throws(() => Ferrows.Thread.accept(42, () => {}), { instanceOf: TypeError });
  t.throws(() => Ferrows.Thread.accept('x', 'nope'), { instanceOf: TypeError });
  let closedConn;
  const server = startServer(t, {}, (s) => {
    s.onconnect = function (ws) { ws.onclose = () => { closedConn = ws; }; };
  });
  const ws = await connect(server);
  ws.terminate();
  await new Promise((r) => setTimeout(r, 100));
  t.throws(() => closedConn.post('x'), { message: /closed/ });
  await closeServer(server);
});
