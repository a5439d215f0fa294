'use strict';
// A rolling deploy: two processes share a port (reusePort) and 1000 ws clients, which reconnect whenever they
// are closed. Draining one process moves every client onto the other, and no client sees anything but the
// drain's close code.
const test = require('ava');
const path = require('path');
const { fork } = require('child_process');
const { freePort } = require('./redis.js');
const { once, WebSocket } = require('./helpers.js');

const CLIENTS = 1000;

function startNode(t, port) {
  const child = fork(path.join(__dirname, 'fixtures', 'drain-node.js'), [], { env: { ...process.env, PORT: String(port), DRAIN_WITHIN: '2000' } });
  t.teardown(() => child.kill('SIGKILL'));
  return child;
}

/** A client that remembers which process served it and reconnects after each close. */
function client(url, record) {
  const state = { pid: null, ws: null };
  const open = () => new Promise((resolve) => {
    const ws = new WebSocket(url);
    state.ws = ws;
    ws.once('message', (data) => { state.pid = Number(data); resolve(); });
    ws.on('error', (err) => record.errors.push(err.message));
    ws.on('close', (code) => {
      if (record.stopped) return;
      record.closes.push(code);
      state.pid = null;
      state.reconnected = open();
    });
  });
  state.opened = open();
  return state;
}

test('draining one of two processes on a port moves its clients to the other, closing each with 1001', async (t) => {
  const port = await freePort();
  const a = startNode(t, port);
  const b = startNode(t, port);
  await Promise.all([once(a, 'message', 20000), once(b, 'message', 20000)]);
  const record = { errors: [], closes: [], stopped: false };
  const url = `ws://127.0.0.1:${port}/`;
  const clients = [];
  for (let i = 0; i < CLIENTS; i += 100) {
    const batch = Array.from({ length: 100 }, () => client(url, record));
    await Promise.all(batch.map((c) => c.opened));
    clients.push(...batch);
  }
  t.teardown(() => { record.stopped = true; for (const c of clients) c.ws.terminate(); });
  const onA = clients.filter((c) => c.pid === a.pid).length;
  t.true(onA > 0 && onA < CLIENTS, `the kernel spread the clients over both processes (${onA} on the first)`);

  const drained = once(a, 'message', 30000);
  a.send('drain');
  t.is((await drained)[0], 'drained'); // a child's 'message' comes with its handle (undefined)
  while (clients.some((c) => c.pid === null)) await Promise.all(clients.map((c) => c.reconnected).filter(Boolean));
  t.is(clients.filter((c) => c.pid === b.pid).length, CLIENTS, 'every client is on the other process');
  t.is(record.closes.length, onA, 'each client of the drained process was closed once');
  t.true(record.closes.every((code) => code === 1001));
  t.deepEqual(record.errors, [], 'no client saw an error');
});
