'use strict';
// Attacks on `npm start`'s echo server, each on a server process of its own: the memory it costs is read from
// /proc (peak growth against a budget), a well-behaved ws client must be served meanwhile, and the memory must
// come back once the attackers are gone. Memory and answers are asserted, never timings.
const test = require('ava');
const net = require('net');
const { startEcho, memoryOf, connect, ask, startServer } = require('./helpers.js');
const { frame, parseFrames, rawConnect, closeCode } = require('./raw.js');

const MiB = 1024 * 1024;

/** Writes `chunk` on every socket as fast as each takes it, for `ms` or until `stop` settles; none of them ever
 * reads. */
function flood(sockets, chunk, ms, stop) {
  return new Promise((resolve) => {
    let running = true;
    const offered = new Map(sockets.map((s) => [s, 0]));
    for (const socket of sockets) {
      socket.pause(); // never read: what the server sends piles up on its side
      // A few writes at a time, then the event loop's turn: the probing client shares this process.
      const pump = () => {
        for (let i = 0; i < 16; i++) {
          if (!running || socket.destroyed) return;
          offered.set(socket, offered.get(socket) + chunk.length);
          if (!socket.write(chunk)) return socket.once('drain', pump);
        }
        setImmediate(pump);
      };
      pump();
    }
    const end = () => {
      running = false;
      resolve([...offered.values()].reduce((a, b) => a + b, 0));
    };
    const timer = setTimeout(end, ms);
    stop?.then(() => {
      clearTimeout(timer);
      end();
    });
  });
}

/** A raw upgrade: { socket } once the 101 arrives, { refused } if the server closes or resets it first. */
function upgradeOrRefusal(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    let head = '';
    socket.on('connect', () => socket.write('GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
      + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n'));
    socket.on('data', (chunk) => {
      head += chunk.toString('latin1');
      if (head.startsWith('HTTP/1.1 101') && head.includes('\r\n\r\n')) resolve({ socket });
    });
    socket.on('error', () => {});
    socket.on('close', () => resolve({ refused: true }));
  });
}

/** One attack: `clients` raw connections flooding `chunk` for 3 s, probes by a ws client meanwhile. */
async function attack(t, { clients, chunk, budget }) {
  const { child, port } = await startEcho(t);
  const probe = await connect({ port });
  t.is(await ask(probe, 'warm-up'), 'warm-up');
  const before = memoryOf(child.pid).rss;
  const attackers = await Promise.all(Array.from({ length: clients }, () => rawConnect(port)));
  const sockets = attackers.map((a) => a.socket);
  const flooding = flood(sockets, chunk, 3000);
  for (let i = 0; i < 10; i++) t.is(await ask(probe, `probe ${i}`), `probe ${i}`); // 5 s bound each
  const offered = await flooding;
  const { peak } = memoryOf(child.pid);
  t.log(`${clients} clients offered ${(offered / MiB).toFixed(0)} MiB; server RSS ${(before / MiB).toFixed(0)} MiB, peak +${((peak - before) / MiB).toFixed(1)} MiB (budget ${budget / MiB})`);
  t.true(peak - before < budget, `peak growth ${peak - before} bytes`);

  for (const socket of sockets) socket.destroy();
  t.is(await ask(probe, 'after'), 'after');
  // The memory comes back (checked for up to 10 s): RSS returns to within 48 MiB of where it was. What stays is
  // mostly V8's, whose heap keeps its grown size until later collections shrink it.
  const margin = 48 * MiB;
  let rss;
  for (let i = 0; i < 40 && (rss = memoryOf(child.pid).rss) > before + margin; i++) await new Promise((r) => setTimeout(r, 250));
  t.log(`RSS after the attack: ${(rss / MiB).toFixed(0)} MiB`);
  t.true(rss <= before + margin, `RSS ${rss} bytes, before ${before}`);
  probe.close();
}

test('non-readers: clients that send echoes as fast as they can and never read the answers cost a bounded amount', async (t) => {
  t.timeout(60000);
  await attack(t, { clients: 50, chunk: frame(2, Buffer.alloc(16 * 1024, 7)), budget: 256 * MiB });
});

test('ping flood: clients that ping as fast as they can and never read the pongs cost a bounded amount', async (t) => {
  t.timeout(60000);
  const pings = Buffer.concat(Array.from({ length: 64 }, () => frame(9, Buffer.alloc(125, 1))));
  await attack(t, { clients: 10, chunk: pings, budget: 256 * MiB });
});

test('closeOnBackpressureLimit: a client that does not read is closed with 1008 once its queue passes maxBackpressure', async (t) => {
  t.timeout(30000);
  const server = startServer(t, { maxBackpressure: 256 * 1024, closeOnBackpressureLimit: true });
  let closed;
  server.onconnect = function (ws) {
    ws.onmessage = (msg) => ws.send(msg);
    ws.onclose = (code) => closed?.(code);
  };
  const serverSaw = new Promise((resolve) => { closed = resolve; });
  const attacker = await rawConnect(server.port);
  // Until the server gives up on it (loopback's socket buffers take about 10 MiB both ways before its queue grows).
  const gaveUp = (async () => {
    while (!server.stats().closeCodesSent.some((c) => c.code === 1008)) await new Promise((r) => setTimeout(r, 10));
  })();
  await flood([attacker.socket], frame(2, Buffer.alloc(16 * 1024, 7)), 20000, gaveUp);
  // A client that stops sending and reads again finds the close frame behind what it did not take.
  attacker.socket.end();
  attacker.socket.resume();
  t.is(await serverSaw, 1008);
  t.is(closeCode(await attacker.closed()), 1008);
});

test('a client that stops reading is not read until it takes its echoes, then gets every one of them', async (t) => {
  t.timeout(60000);
  const server = startServer(t, { maxBackpressure: 256 * 1024 });
  let received = 0;
  server.onconnect = function (ws) {
    ws.onmessage = (msg) => {
      received++;
      ws.send(msg);
    };
  };
  const client = await connect({ port: server.port });
  client._socket.pause();
  // 32 MiB against a 256 KiB limit: more than loopback's socket buffers take in (about 10 MiB both ways), so
  // the echoes pile up in the server's queue and the server stops reading.
  const count = 2048;
  const message = Buffer.alloc(16 * 1024, 7);
  for (let i = 0; i < count; i++) client.send(message);
  while (server.stats().backpressurePauses === 0) await new Promise((r) => setTimeout(r, 10)); // bounded by t.timeout
  t.true(received < count, 'the server went on reading past its limit');
  let echoed = 0;
  const all = new Promise((resolve) => client.on('message', () => ++echoed === count && resolve()));
  client._socket.resume();
  await all;
  t.is(received, count);
  client.close();
});

test('maxBackpressure must be a positive number of bytes', (t) => {
  t.throws(() => startServer(t, { maxBackpressure: -1 }), { message: /maxBackpressure must be a positive number/ });
  t.throws(() => startServer(t, { maxBackpressure: 'big' }), { instanceOf: TypeError });
});

test('at the open-file limit a connection is reset at once, the server does not spin, and serves again once descriptors free', async (t) => {
  t.timeout(60000);
  const { child, port } = await startEcho(t, { openFiles: 64 });
  const outcomes = await Promise.all(Array.from({ length: 100 }, () => upgradeOrRefusal(port)));
  const open = outcomes.filter((o) => o.socket);
  const refused = outcomes.filter((o) => o.refused);
  t.log(`${open.length} upgraded, ${refused.length} refused`);
  t.true(open.length > 0 && refused.length > 0);
  t.is(open.length + refused.length, 100, 'no connection is left waiting in the backlog');

  // At the limit and idle: the server uses (almost) no CPU, where a busy accept loop would take a whole core.
  const cpu = () => { const f = require('fs').readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };
  const ticks = cpu();
  await new Promise((r) => setTimeout(r, 1000));
  t.true(cpu() - ticks < 50, `used ${cpu() - ticks} clock ticks in 1 s`);

  // Closed connections give their descriptors back at once (not when their JavaScript objects are collected),
  // so the server takes new connections again.
  for (const { socket } of open) socket.destroy();
  let again = { refused: true };
  for (let i = 0; i < 50 && again.refused; i++) {
    again = await upgradeOrRefusal(port);
    if (again.refused) await new Promise((r) => setTimeout(r, 100));
  }
  t.truthy(again.socket, 'served again once descriptors were free');
  const echoed = new Promise((resolve) => again.socket.on('data', (chunk) => resolve(parseFrames(chunk)[0])));
  again.socket.write(frame(1, 'served again'));
  t.is(String((await echoed).payload), 'served again');
  again.socket.destroy();
});
