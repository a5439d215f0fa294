'use strict';
// The Redis backplane across real processes: each ferrows server is a child process with `ws` clients of its
// own, and they share a real redis-server started for the test.
const test = require('ava');
const path = require('path');
const { fork } = require('child_process');
const { startRedis, freePort } = require('./redis.js');
const { selfSignedEndEntity } = require('./certs.js');
const { WebSocket, once } = require('./helpers.js');
const { WebSocket: Ferrows } = require('..');

const FIXTURE = path.join(__dirname, 'fixtures', 'backplane-node.js');
let backplanes = 0;
const uniqueName = () => `test-${process.pid}-${++backplanes}`;

/** Resolves when `check()` holds, polling; rejects after `ms` with `what`. */
async function until(check, what, ms = 15000) {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** One ferrows process on the backplane `name`. */
class Node {
  static async start(t, redis, name, face = 'sack', env = {}) {
    const node = new Node(fork(FIXTURE, [], { env: { ...process.env, REDIS_URL: redis.url, BACKPLANE: name, FACE: face, ...env } }));
    t.teardown(() => node.kill('SIGKILL'));
    await until(() => node.port !== undefined, `${face} process listening`);
    await node.reaches('up');
    return node;
  }

  constructor(child) {
    this.child = child;
    this.states = [];
    this.errors = [];
    this.done = new Set();
    this.requests = 0;
    this.counts = new Map();
    child.on('message', (m) => {
      if (m.port !== undefined) this.port = m.port;
      if (m.backplane === 'error') this.errors.push(m.error);
      else if (m.backplane) this.states.push(m.backplane);
      if (m.done !== undefined) this.done.add(m.done);
      if (m.count !== undefined) this.counts.set(m.done, m.count);
    });
  }

  /** Resolves once the last state the process reported is `state`. */
  reaches(state) {
    return until(() => this.states.at(-1) === state, `backplane ${state}`);
  }

  /** Has the process publish each of `data` to `topic` (null: broadcast); resolves when it did. */
  async publish(topic, data) {
    const id = ++this.requests;
    this.child.send({ id, topic, data });
    await until(() => this.done.has(id), 'publication');
  }

  /** The subscribers of `topic` in every process on the backplane, as the process counts them. */
  async subscriberCount(topic) {
    const id = ++this.requests;
    this.child.send({ id, count: topic });
    await until(() => this.done.has(id), 'subscriberCount');
    return this.counts.get(id);
  }

  kill(signal) {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
  }
}

/** A `ws` client of `node` subscribed to `topics`; `got` holds what it receives from then on. */
async function client(node, topics) {
  const ws = new WebSocket(`ws://127.0.0.1:${node.port}/`);
  ws.topics = topics;
  ws.got = [];
  ws.on('message', (data) => ws.got.push(String(data)));
  await once(ws, 'open');
  for (const topic of topics) ws.send(`sub ${topic}`);
  await until(() => ws.got.length === topics.length, 'subscriptions');
  ws.got.length = 0;
  return ws;
}

/** Messages named publisher|topic|n ('*' for a broadcast). */
const named = (publisher, topic, from, to) => Array.from({ length: to - from + 1 }, (_, i) => `${publisher}|${topic}|${from + i}`);

/**
 * Every publisher broadcasts an end marker; once every client has all of them, nothing else can still be on
 * its way (each publisher's messages arrive in order), so what each client got is complete.
 */
async function settle(publishers, clients) {
  const ends = publishers.map((_, i) => `end|${i}`);
  await Promise.all(publishers.map((node, i) => node.publish(null, [ends[i]])));
  await until(() => clients.every((ws) => ends.every((end) => ws.got.includes(end))), 'end markers everywhere');
}

/** What `ws` got from `publisher`, in order of arrival. */
const from = (ws, publisher) => ws.got.filter((m) => m.startsWith(`${publisher}|`));
/** What `ws` should have got of `sent` (a publisher's messages in order): its topics and broadcasts. */
const meantFor = (ws, sent) => sent.filter((m) => ws.topics.includes(m.split('|')[1]) || m.split('|')[1] === '*');

test('two processes (sack face, node-websocket-server face): broadcast and publish reach exactly the right clients on both, in order', async (t) => {
  const redis = await startRedis(t);
  const name = uniqueName();
  const nodes = [await Node.start(t, redis, name), await Node.start(t, redis, name, 'nws')];
  const clients = [
    await client(nodes[0], ['room:1']), await client(nodes[0], ['room:2']), await client(nodes[0], []),
    await client(nodes[1], ['room:1']), await client(nodes[1], ['room:1', 'room:2']), await client(nodes[1], []),
  ];
  const sent = [
    [...named(0, 'room:1', 1, 100), ...named(0, '*', 1, 5), ...named(0, 'room:2', 1, 50)],
    [...named(1, 'room:2', 1, 100), ...named(1, 'room:1', 1, 20), ...named(1, '*', 1, 5)],
  ];
  await Promise.all(nodes.map(async (node, i) => {
    for (const m of sent[i]) {
      const topic = m.split('|')[1];
      await node.publish(topic === '*' ? null : topic, [m]);
    }
  }));
  await settle(nodes, clients);
  for (const ws of clients) {
    for (const publisher of [0, 1]) t.deepEqual(from(ws, publisher), meantFor(ws, sent[publisher]), `client of ${ws.topics}`);
  }
  t.deepEqual(from(clients[2], 0).concat(from(clients[5], 1)).filter((m) => !m.includes('|*|')), [], 'no topics, no publications');
  for (const ws of clients) ws.terminate();
});

test('three processes, one per face (sack, ws, WebSocket-Node): concurrent publishers, per-publisher order kept', async (t) => {
  const redis = await startRedis(t);
  const name = uniqueName();
  const nodes = await Promise.all(['sack', 'ws', 'websocket'].map((face) => Node.start(t, redis, name, face)));
  const clients = [];
  for (const node of nodes) {
    clients.push(await client(node, ['prices']), await client(node, ['chat', 'prices']), await client(node, []));
  }
  const sent = nodes.map((_, i) => [...named(i, 'prices', 1, 300), ...named(i, 'chat', 1, 30), ...named(i, '*', 1, 3)]);
  // Each process publishes in batches, all at once: the stream interleaves them.
  await Promise.all(nodes.map(async (node, i) => {
    for (let at = 0; at < sent[i].length; at += 30) {
      const batch = sent[i].slice(at, at + 30);
      const topic = batch[0].split('|')[1];
      t.true(batch.every((m) => m.split('|')[1] === topic));
      await node.publish(topic === '*' ? null : topic, batch);
    }
  }));
  await settle(nodes, clients);
  for (const ws of clients) {
    for (const publisher of [0, 1, 2]) t.deepEqual(from(ws, publisher), meantFor(ws, sent[publisher]));
  }
  for (const ws of clients) ws.terminate();
});

test('Redis stopped and restarted mid-stream: what was published meanwhile arrives after the reconnect, once', async (t) => {
  const redis = await startRedis(t);
  const name = uniqueName();
  const [a, b] = [await Node.start(t, redis, name), await Node.start(t, redis, name)];
  const [local, remote] = [await client(a, ['feed']), await client(b, ['feed'])];
  await a.publish('feed', named(0, 'feed', 1, 50));
  await until(() => remote.got.length === 50, 'first half across');

  await redis.stop();
  await Promise.all([a.reaches('down'), b.reaches('down')]);
  await a.publish('feed', named(0, 'feed', 51, 100));
  await until(() => local.got.length === 100, 'second half to the local subscriber while Redis is down');
  t.is(remote.got.length, 50);

  await redis.start();
  await Promise.all([a.reaches('up'), b.reaches('up')]);
  await settle([a], [local, remote]);
  const expected = [...named(0, 'feed', 1, 100), 'end|0'];
  t.deepEqual(local.got, expected);
  t.deepEqual(remote.got, expected, 'none lost, none twice, in order');
  t.deepEqual(b.states, ['up', 'down', 'up']);
  t.deepEqual(a.states, ['up', 'down', 'up']);
  t.deepEqual(a.errors, [], 'no error reported for each retry while down');
  for (const ws of [local, remote]) ws.terminate();
});

test('while Redis is down the queue is bounded: the oldest publications are dropped and reported, the rest arrive in order', async (t) => {
  const redis = await startRedis(t);
  const name = uniqueName();
  // Room for about 20 of these publications (64 bytes of bookkeeping each besides the payload).
  const [a, b] = [await Node.start(t, redis, name, 'sack', { QUEUE_LIMIT: '2000' }), await Node.start(t, redis, name)];
  const remote = await client(b, ['feed']);
  await redis.stop();
  await a.reaches('down');
  await a.publish('feed', named(0, 'feed', 1, 100));
  await redis.start();
  await a.reaches('up');
  await settle([a], [remote]);
  const got = remote.got.slice(0, -1).map((m) => Number(m.split('|')[2]));
  const dropped = () => a.errors.reduce((sum, e) => sum + Number((/(\d+) oldest publications dropped/.exec(e) || [0, NaN])[1]), 0);
  // The drop reports travel over IPC, the messages through Redis and the other process: wait for both.
  await until(() => got.length + dropped() === 100, 'every publication arrived or was reported dropped');
  t.true(got.length > 0 && dropped() > 0, `${got.length} arrived, ${dropped()} dropped`);
  // What arrives, in order: whatever batch the writer had taken when the queue overflowed, then the newest.
  t.true(got.every((n, i) => i === 0 || n > got[i - 1]), got.join(' '));
  t.is(got.at(-1), 100);
  t.deepEqual(a.states, ['up', 'down', 'up']);
  remote.terminate();
});

test('rediss://: two processes reach Redis over TLS, trusting its certificate through SSL_CERT_FILE', async (t) => {
  const { base } = selfSignedEndEntity('127.0.0.1');
  const redis = await startRedis(t, { port: await freePort(), cert: `${base}.crt`, key: `${base}.key` });
  const name = uniqueName();
  const trust = { SSL_CERT_FILE: `${base}.crt` };
  const [a, b] = [await Node.start(t, redis, name, 'sack', trust), await Node.start(t, redis, name, 'sack', trust)];
  const remote = await client(b, ['secure']);
  await a.publish('secure', named(0, 'secure', 1, 20));
  await settle([a], [remote]);
  t.deepEqual(remote.got, [...named(0, 'secure', 1, 20), 'end|0']);

  // Without the certificate trusted, the connection is refused and the process reports why.
  const untrusted = new Node(fork(FIXTURE, [], { env: { ...process.env, REDIS_URL: redis.url, BACKPLANE: name } }));
  t.teardown(() => untrusted.kill('SIGKILL'));
  const [state, error] = await new Promise((resolve) => untrusted.child.on('message', (m) => m.backplane && resolve([m.backplane, m.error])));
  t.is(state, 'down');
  t.regex(error, /certificate/);
  remote.terminate();
});

test('a process killed with SIGKILL does not disturb the others', async (t) => {
  const redis = await startRedis(t);
  const name = uniqueName();
  const nodes = [await Node.start(t, redis, name), await Node.start(t, redis, name), await Node.start(t, redis, name)];
  const clients = await Promise.all(nodes.map((node) => client(node, ['news'])));
  await nodes[0].publish('news', named(0, 'news', 1, 10));
  await until(() => clients.every((ws) => ws.got.length === 10), 'everyone has the first ten');

  nodes[2].kill('SIGKILL');
  await once(clients[2], 'close');
  const survivors = nodes.slice(0, 2);
  await nodes[0].publish('news', named(0, 'news', 11, 20));
  await nodes[1].publish('news', named(1, 'news', 1, 10));
  await settle(survivors, clients.slice(0, 2));
  for (const ws of clients.slice(0, 2)) {
    t.deepEqual(from(ws, 0), named(0, 'news', 1, 20));
    t.deepEqual(from(ws, 1), named(1, 'news', 1, 10));
  }
  t.deepEqual(survivors.map((node) => node.states), [['up'], ['up']]);
  for (const ws of clients) ws.terminate();
});

test('an unreachable Redis: the server starts and reports down; with required: true, Server() throws', async (t) => {
  const port = await freePort();
  t.throws(() => Ferrows.Server({ port: 0, address: '127.0.0.1', backplane: { redis: `redis://127.0.0.1:${port}`, required: true } }), {
    message: new RegExp(`backplane: cannot reach redis://127.0.0.1:${port}`),
  });
  for (const redis of [`redis://127.0.0.1:${port}`, 'http://not-redis']) {
    const server = Ferrows.Server({ port: 0, address: '127.0.0.1', backplane: { redis } });
    const [state, err] = await new Promise((resolve) => server.on('backplane', (...args) => resolve(args)));
    t.is(state, 'down');
    t.true(err instanceof Error && err.message.startsWith('backplane: '), String(err));
    // Local subscribers are still served.
    t.deepEqual(server.publish('t', 'x'), { sent: 0, skipped: 0 });
    server.close();
  }
  for (const bad of [42, { redis: 1 }, { name: '' }, { maxLen: -1 }, { queueLimit: 1.5 }]) {
    t.throws(() => Ferrows.Server({ port: 0, backplane: bad }), { instanceOf: TypeError });
  }
});

test('node:cluster: workers share the port and, on one backplane, reach each other\'s clients', async (t) => {
  const redis = await startRedis(t);
  const port = await freePort();
  const primary = fork(path.join(__dirname, 'fixtures', 'cluster-node.js'), [], {
    env: { ...process.env, REDIS_URL: redis.url, BACKPLANE: uniqueName(), PORT: String(port) },
  });
  t.teardown(() => primary.kill('SIGTERM'));
  // Starting a primary and two workers (each loading the addon and reaching Redis) is slow when the machine is busy
  // with the other test files: a generous bound, not a timing.
  await once(primary, 'message', 45000);
  const clients = [];
  const pids = new Set();
  // The kernel spreads connections over the workers by address hash: 24 connections miss one of two workers
  // with probability 2^-23.
  for (let i = 0; i < 24; i++) {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
    ws.got = [];
    ws.on('message', (data) => ws.got.push(String(data)));
    await once(ws, 'open');
    await until(() => ws.got.length === 1, 'the worker pid');
    pids.add(ws.got.shift());
    clients.push(ws);
  }
  t.is(pids.size, 2, 'both workers took connections');
  clients[0].send('hello');
  await until(() => clients.every((ws) => ws.got.length === 1), 'the publication on every worker');
  t.true(clients.every((ws) => ws.got[0] === 'hello'));
  for (const ws of clients) ws.terminate();
});

test('presence: subscriberCount sums every process on the backplane; a killed process stops counting within the TTL', async (t) => {
  const redis = await startRedis(t);
  const name = uniqueName();
  const nodes = [await Node.start(t, redis, name), await Node.start(t, redis, name, 'ws'), await Node.start(t, redis, name)];
  const subscribed = [2, 3, 4];
  for (const [i, n] of subscribed.entries()) {
    for (let k = 0; k < n; k++) await client(nodes[i], ['room', `only:${i}`]);
  }
  await client(nodes[0], ['elsewhere']);
  // Each process rewrites its counts every 2 s; within a few rounds all three are in.
  let count;
  const deadline = Date.now() + 10000;
  while ((count = await nodes[0].subscriberCount('room')) !== 9 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
  t.is(count, 9);
  t.is(await nodes[1].subscriberCount('only:2'), 4);
  t.is(await nodes[2].subscriberCount('nobody'), 0);
  nodes[2].kill('SIGKILL');
  const gone = Date.now() + 15000; // the TTL is 6 s
  while ((count = await nodes[0].subscriberCount('room')) !== 5 && Date.now() < gone) await new Promise((r) => setTimeout(r, 250));
  t.is(count, 5, 'the killed process no longer counts');
});
