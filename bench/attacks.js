'use strict';
// Attacks on `npm start`'s echo server, as an attacker would try them with raw sockets: each on a fresh server
// process (pinned to core 0 where there are two cores), its peak RSS growth read from /proc, a well-behaved ws
// client probing it once a second meanwhile, and its RSS five seconds after the attack.
// Usage: node bench/attacks.js [name ...]   (names: see ATTACKS; all by default)
const net = require('net');
const zlib = require('zlib');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');
const WebSocket = require('ws');
const { frame } = require('../__test__/raw.js');
const { memoryOf } = require('../__test__/helpers.js');

const MiB = 1024 * 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const UPGRADE = 'GET / HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
  + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n';

function startServer(env = {}) {
  const script = path.join(__dirname, '..', 'examples', 'echo.js');
  const pin = os.cpus().length > 1 ? ['taskset', ['-c', '0', process.execPath, script]] : [process.execPath, [script]];
  const child = spawn(pin[0], pin[1], { env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve) => child.stdout.on('data', (chunk) => {
    const match = /:(\d+)\/$/m.exec(String(chunk).trim());
    if (match) resolve({ child, port: Number(match[1]) });
  }));
}

/** A raw connection that upgrades (extra headers optional); resolves with the socket and a reader of what came. */
function upgraded(port, headers = '') {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`${UPGRADE}${headers}\r\n`));
    let head = Buffer.alloc(0);
    const onData = (chunk) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      if (!head.toString('latin1', 0, 12).startsWith('HTTP/1.1 101')) return reject(new Error(head.toString()));
      resolve({ socket, rest: head.subarray(end + 4) });
    };
    socket.on('data', onData);
    socket.on('error', reject);
  });
}

/** Resolves with the close code the server sends (reading everything before it), or 'reset'/'closed'. */
function closeCodeOf(socket, rest = Buffer.alloc(0)) {
  return new Promise((resolve) => {
    let buf = rest;
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]).subarray(-64 * 1024); // a close frame is the last thing sent
      const at = buf.lastIndexOf(Buffer.from([0x88]));
      if (at >= 0 && buf.length >= at + 4 && buf[at + 1] >= 2 && buf[at + 1] <= 125) resolve(buf.readUInt16BE(at + 2));
    });
    socket.on('error', () => resolve('reset'));
    socket.on('close', () => resolve('closed'));
  });
}

function flood(sockets, chunk, ms) {
  let running = true;
  for (const socket of sockets) {
    socket.pause();
    // A few writes at a time, then the event loop's turn: the probing client shares this process.
    const pump = () => {
      for (let i = 0; i < 16; i++) {
        if (!running || socket.destroyed) return;
        if (!socket.write(chunk)) return socket.once('drain', pump);
      }
      setImmediate(pump);
    };
    pump();
  }
  return sleep(ms).then(() => { running = false; });
}

/** In batches of `width`: `n` calls of `fn(i)`. */
async function inBatches(n, width, fn) {
  const results = [];
  for (let i = 0; i < n; i += width) results.push(...await Promise.all(Array.from({ length: Math.min(width, n - i) }, (_, j) => fn(i + j))));
  return results;
}

const count = (values) => Object.entries(values.reduce((m, v) => ({ ...m, [v]: (m[v] || 0) + 1 }), {})).map(([k, v]) => `${v}× ${k}`).join(', ');

const ATTACKS = {
  async slowloris(port) {
    const sockets = Array.from({ length: 1000 }, () => net.connect(port, '127.0.0.1'));
    const ends = sockets.map((s) => new Promise((resolve) => {
      let answer = '';
      s.on('data', (d) => { answer += d; });
      s.on('error', () => resolve('reset'));
      s.on('close', () => resolve(answer.split('\r\n')[0] || 'closed'));
    }));
    const request = Buffer.from(`${UPGRADE}\r\n`);
    for (let i = 0; i < request.length; i++) {
      for (const s of sockets) if (!s.destroyed) s.write(request.subarray(i, i + 1));
      await sleep(100);
    }
    return count(await Promise.all(ends));
  },
  async handshakes(port) {
    const outcomes = await inBatches(20000, 256, () => upgraded(port).then(({ socket }) => { socket.destroy(); return '101'; }, () => 'failed'));
    return count(outcomes);
  },
  async huge_header(port) {
    const { socket, rest } = await upgraded(port);
    const header = Buffer.from([0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4]); // 2^62 bytes announced
    socket.write(header);
    return `close ${await closeCodeOf(socket, rest)}`;
  },
  async fragments(port) {
    const { socket, rest } = await upgraded(port);
    const code = closeCodeOf(socket, rest);
    let open = true;
    code.then(() => { open = false; });
    socket.write(frame(1, 'a', { fin: false }));
    const piece = frame(0, Buffer.alloc(64 * 1024, 97), { fin: false });
    while (open && !socket.destroyed) if (!socket.write(piece)) await Promise.race([new Promise((r) => socket.once('drain', r)), code]);
    return `close ${await code}`;
  },
  async non_reader(port) {
    const conns = await Promise.all(Array.from({ length: 50 }, () => upgraded(port)));
    await flood(conns.map((c) => c.socket), frame(2, Buffer.alloc(16 * 1024, 7)), 10000);
    conns.forEach((c) => c.socket.destroy());
    return '50 clients, 10 s';
  },
  async ping_flood(port) {
    const conns = await Promise.all(Array.from({ length: 10 }, () => upgraded(port)));
    const pings = Buffer.concat(Array.from({ length: 64 }, () => frame(9, Buffer.alloc(125, 1))));
    await flood(conns.map((c) => c.socket), pings, 10000);
    conns.forEach((c) => c.socket.destroy());
    return '10 clients, 10 s';
  },
  async rst_mid_frame(port) {
    const half = frame(2, Buffer.alloc(4096, 1)).subarray(0, 2048);
    const outcomes = await inBatches(10000, 256, () => upgraded(port).then(async ({ socket }) => {
      socket.write(half);
      await sleep(5);
      socket.resetAndDestroy();
      return 'reset sent';
    }, () => 'failed'));
    return count(outcomes);
  },
  async deflate_bomb(port) {
    const { socket, rest } = await upgraded(port, 'Sec-WebSocket-Extensions: permessage-deflate\r\n');
    const bomb = zlib.deflateRawSync(Buffer.alloc(256 * MiB), { level: 9 });
    const payload = bomb.subarray(0, bomb.length); // inflates far past maxPayload (64 MiB)
    const head = frame(2, payload);
    head[0] |= 0x40; // RSV1: compressed
    socket.write(head);
    return `${(payload.length / 1024).toFixed(0)} KiB → 256 MiB: close ${await closeCodeOf(socket, rest)}`;
  },
  async garbage(port) {
    const before = await inBatches(1000, 100, () => new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => s.write(require('crypto').randomBytes(600)));
      let answer = '';
      s.on('data', (d) => { answer += d; });
      s.on('error', () => resolve('reset'));
      s.on('close', () => resolve(answer.split('\r\n')[0] || 'closed'));
    }));
    const after = await inBatches(1000, 100, () => upgraded(port).then(({ socket, rest }) => {
      socket.write(require('crypto').randomBytes(600));
      return closeCodeOf(socket, rest).then((c) => `close ${c}`);
    }));
    return `before the upgrade: ${count(before)}; after: ${count(after)}`;
  },
};

async function probeWhile(port, running) {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
  await new Promise((resolve, reject) => { ws.once('open', resolve); ws.once('error', reject); });
  let answered = 0;
  let missed = 0;
  while (running()) {
    const reply = new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), 5000);
      ws.once('message', () => { clearTimeout(timer); resolve(true); });
    });
    ws.send('probe');
    if (await reply) answered++; else missed++;
    await sleep(1000);
  }
  ws.close();
  return `${answered}/${answered + missed}`;
}

(async () => {
  const names = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(ATTACKS);
  console.log('| attack | outcome | peak RSS growth | RSS 5 s after | probes answered |');
  console.log('|---|---|---|---|---|');
  for (const name of names) {
    const { child, port } = await startServer(name === 'deflate_bomb' ? { DEFLATE: '1' } : {});
    await sleep(500);
    const before = memoryOf(child.pid).rss;
    let running = true;
    const probes = probeWhile(port, () => running);
    const outcome = await ATTACKS[name](port).catch((err) => `error: ${err.message}`);
    running = false;
    const probed = await probes;
    const { peak } = memoryOf(child.pid);
    await sleep(5000);
    const after = memoryOf(child.pid).rss;
    const alive = child.exitCode === null;
    child.kill('SIGKILL');
    console.log(`| ${name} | ${alive ? '' : 'SERVER DIED; '}${outcome} | +${((peak - before) / MiB).toFixed(1)} MiB | ${after - before >= 0 ? '+' : ''}${((after - before) / MiB).toFixed(1)} MiB | ${probed} |`);
  }
  process.exit(0);
})();
