'use strict';
// Topics inside one process (no backplane): membership lives natively, publish reaches exactly the subscribers.
const test = require('ava');
const { startServer, connect, messages, ask, closeServer, once, WebSocket } = require('./helpers.js');
const WsFace = require('ferrows/ws');

/** A server whose clients manage their own topics by message: "sub <topic>" / "unsub <topic>" / "topics". */
function topicServer(t) {
  return startServer(t, {}, (server) => server.on('connect', (ws) => ws.on('message', (msg) => {
    const [command, topic] = msg.split(' ');
    if (command === 'sub') ws.send(`sub ${ws.subscribe(topic)}`);
    else if (command === 'unsub') ws.send(`unsub ${ws.unsubscribe(topic)}`);
    else ws.send(JSON.stringify(ws.topics));
  })));
}

/** Whatever `ws` receives from now on, as strings. */
function record(ws) {
  const got = [];
  ws.on('message', (data, isBinary) => got.push(isBinary ? [...data] : String(data)));
  return got;
}

test('publish reaches exactly the subscribers of its topic, in order; a client subscribed to nothing gets nothing', async (t) => {
  const server = topicServer(t);
  const [a, b, none] = await Promise.all([connect(server), connect(server), connect(server)]);
  t.is(await ask(a, 'sub room:1'), 'sub true');
  t.is(await ask(a, 'sub room:1'), 'sub false', 'already subscribed');
  t.is(await ask(b, 'sub room:1'), 'sub true');
  t.is(await ask(b, 'sub room:2'), 'sub true');
  t.is(await ask(b, 'topics'), '["room:1","room:2"]');
  const [gotA, gotB, gotNone] = [a, b, none].map(record);
  t.deepEqual(server.publish('room:1', 'one'), { sent: 2, skipped: 0 });
  t.deepEqual(server.publish('room:2', new Uint8Array([2])), { sent: 1, skipped: 0 });
  t.deepEqual(server.publish('room:3', 'nobody'), { sent: 0, skipped: 0 });
  server.publish('room:1', 'three');
  // A broadcast behind them marks the end of what each client can have got.
  server.broadcast('end');
  await Promise.all([a, b, none].map((ws, i) => new Promise((resolve) => {
    const got = [gotA, gotB, gotNone][i];
    const check = () => (got.at(-1) === 'end' ? resolve() : ws.once('message', () => setImmediate(check)));
    check();
  })));
  t.deepEqual(gotA, ['one', 'three', 'end']);
  t.deepEqual(gotB, ['one', [2], 'three', 'end']);
  t.deepEqual(gotNone, ['end']);
  for (const ws of [a, b, none]) ws.terminate();
  await closeServer(server);
});

test('unsubscribe and close leave topics', async (t) => {
  const server = topicServer(t);
  const [a, b] = await Promise.all([connect(server), connect(server)]);
  await ask(a, 'sub news');
  await ask(b, 'sub news');
  t.is(await ask(a, 'unsub news'), 'unsub true');
  t.is(await ask(a, 'unsub news'), 'unsub false', 'not subscribed any more');
  t.is(await ask(a, 'topics'), '[]');
  t.deepEqual(server.publish('news', 'x'), { sent: 1, skipped: 0 });
  await messages(b, 1);
  b.close();
  await once(b, 'close');
  t.deepEqual(server.publish('news', 'y'), { sent: 0, skipped: 0 }, 'a closed connection is no subscriber');
  a.terminate();
  await closeServer(server);
});

test('a topic must be a non-empty string of at most 256 bytes', async (t) => {
  let opened;
  const connected = new Promise((resolve) => { opened = resolve; });
  const server = startServer(t, {}, (s) => s.on('connect', opened));
  const client = connect(server);
  const ws = await connected;
  for (const bad of ['', 'é'.repeat(129), 42, null, undefined, { toString: () => 'x' }]) {
    t.throws(() => ws.subscribe(bad), { instanceOf: TypeError }, `subscribe(${String(bad).slice(0, 10)})`);
    t.throws(() => ws.unsubscribe(bad), { instanceOf: TypeError });
    t.throws(() => server.publish(bad, 'x'), { instanceOf: TypeError });
  }
  t.true(ws.subscribe('x'.repeat(256)));
  t.true(ws.subscribe('é'.repeat(128)));
  (await client).terminate();
  await closeServer(server);
});

test('the ws face has the same topics', async (t) => {
  const wss = new WsFace.WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.teardown(() => wss.close());
  await once(wss, 'listening');
  wss.on('connection', (ws) => ws.on('message', (topic) => ws.send(String(ws.subscribe(String(topic))))));
  const ws = new WebSocket(`ws://127.0.0.1:${wss.address().port}/`);
  await once(ws, 'open');
  t.is(await ask(ws, 'prices'), 'true');
  const [server] = [...wss.clients];
  t.deepEqual(server.topics, ['prices']);
  const got = messages(ws, 2);
  t.deepEqual(wss.publish('prices', 'up'), { sent: 1, skipped: 0 });
  t.deepEqual(wss.broadcast('all'), { sent: 1, skipped: 0 });
  t.deepEqual((await got).map((m) => String(m.data)), ['up', 'all']);
  ws.terminate();
});
