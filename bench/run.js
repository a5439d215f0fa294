'use strict';
// Echo benchmark: ferrows vs `ws`, measured in the same run by the Rust load generator (bench/loadgen).
// With two or more cores the server process is pinned to core 0 and the load generator to core 1.
// Usage: npm run bench [-- --seconds 5 --inflight N --svg ratios.svg --only small,16k,1m,deflate,wss,wss16k,wsface,wsface16k,limits,broadcast,workers,topics,feed]
// With the npm `uwebsockets` package resolvable (installed, or on NODE_PATH), uWS.js joins the plain echo scenarios.
// Broadcast and topics count deliveries (messages received by a client) per second. Topics runs two server
// processes on a redis-server of its own (Debian's package).
const { spawn, execFileSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const os = require('os');

const { Redis, freePort } = require('../__test__/redis.js');

const root = path.join(__dirname, '..');
const { option: optionIn } = require('../scripts/options.js');

const argv = process.argv.slice(2);
const option = (name, fallback) => optionIn(argv, name, fallback);
const seconds = Number(option('seconds', 5));
const only = option('only', '');
// Overrides every scenario's messages in flight per connection (e.g. 1 for latency without queueing).
const inflight = option('inflight', undefined);

const WS_FACE = [
  { name: 'ferrows', script: 'examples/echo.js' },
  { name: 'f/ws port', script: 'bench/ferrows-ws-echo.js', env: { MODE: 'port' } },
  { name: 'f/ws srv', script: 'bench/ferrows-ws-echo.js', env: { MODE: 'server' } },
  { name: 'ws', script: 'bench/ws-echo.js' },
];

const SCENARIOS = [
  { id: 'small', name: '32 B text, 64 conns x 8 in flight', conns: 64, size: 32, inflight: 8 },
  { id: '16k', name: '16 KiB binary, 16 conns x 4 in flight', conns: 16, size: 16384, inflight: 4, binary: true },
  { id: '1m', name: '1 MiB binary, 4 conns x 2 in flight', conns: 4, size: 1 << 20, inflight: 2, binary: true },
  { id: 'deflate', name: '16 KiB JSON, deflate, 16 conns x 4', conns: 16, size: 16384, inflight: 4, deflate: true },
  { id: 'wss', name: '32 B text over TLS, 64 conns x 8', conns: 64, size: 32, inflight: 8, tls: true },
  { id: 'wss16k', name: '16 KiB binary over TLS, 16 conns x 4', conns: 16, size: 16384, inflight: 4, binary: true, tls: true },
  { id: 'wsface', name: '32 B text, 64 x 8, ws face', conns: 64, size: 32, inflight: 8, servers: WS_FACE },
  // What the native limits cost when all are on (bench/ferrows-limits-echo.js) against the same server without.
  {
    id: 'limits', name: '32 B text, 64 x 8, limits on', conns: 64, size: 32, inflight: 8,
    servers: [
      { name: 'ferrows', script: 'examples/echo.js' },
      { name: 'f+limits', script: 'bench/ferrows-limits-echo.js' },
      { name: 'ws', script: 'bench/ws-echo.js' },
    ],
  },
  { id: 'wsface16k', name: '16 KiB binary, 16 x 4, ws face', conns: 16, size: 16384, inflight: 4, binary: true, servers: WS_FACE },
  {
    id: 'broadcast', name: 'broadcast 32 B text to 1000 conns', conns: 1000, size: 32, inflight: 16, broadcast: true,
    servers: [
      { name: 'ferrows', script: 'bench/ferrows-broadcast.js' },
      { name: 'f/websocket', script: 'bench/websocket-node-broadcast.js' },
      { name: 'websocket', script: 'bench/websocket-node-broadcast.js', env: { IMPL: 'websocket' } },
      { name: 'ws', script: 'bench/ws-broadcast.js' },
    ],
  },
  // Two server processes on one Redis, 500 clients each, all subscribed to one topic; a message from the first
  // client is published to the topic. Unpinned: the servers, Redis and the load generator share both cores.
  {
    id: 'topics', name: 'publish 32 B to a topic, 2 procs x 500', conns: 1000, size: 32, inflight: 64, broadcast: true,
    processes: 2, redis: true, unpinned: true,
    servers: [
      { name: 'ferrows', script: 'bench/ferrows-topic.js' },
      { name: 'ws', script: 'bench/ws-redis-topic.js' },
    ],
  },
  // The same two processes with one client each: publications per second through the backplane (deliveries/2).
  {
    id: 'feed', name: 'publish 32 B, 2 procs x 1 client', conns: 2, size: 32, inflight: 256, broadcast: true,
    processes: 2, redis: true, unpinned: true,
    servers: [
      { name: 'ferrows', script: 'bench/ferrows-topic.js' },
      { name: 'ws', script: 'bench/ws-redis-topic.js' },
    ],
  },
  // Both cores for the servers here (unpinned): one listener posting to worker_threads vs ws under cluster.
  {
    id: 'workers', name: '32 B text, 64 x 8, worker threads', conns: 64, size: 32, inflight: 8, unpinned: true,
    servers: [
      { name: 'ferrows', script: 'examples/echo.js' },
      { name: 'ferrows+1w', script: 'bench/ferrows-workers.js', env: { WORKERS: '1' } },
      { name: 'ferrows+2w', script: 'bench/ferrows-workers.js', env: { WORKERS: '2' } },
      { name: 'ws', script: 'bench/ws-echo.js' },
      { name: 'ws cl2', script: 'bench/ws-cluster.js', env: { WORKERS: '2' } },
    ],
  },
].filter((s) => !only || only.split(',').includes(s.id));

const SERVERS = [
  { name: 'ferrows', script: 'examples/echo.js' },
  { name: 'ws', script: 'bench/ws-echo.js' },
];

/** uWebSockets.js joins the plain echo scenarios when the npm `uwebsockets` package resolves (NODE_PATH works). */
const UWS = (() => {
  try {
    require.resolve('uwebsockets', { paths: [root, ...(process.env.NODE_PATH || '').split(path.delimiter).filter(Boolean)] });
    return { name: 'uWS.js', script: 'bench/uws-echo.js' };
  } catch {
    return null;
  }
})();
const serversOf = (s) => s.servers || (UWS && !s.tls && !s.deflate ? [...SERVERS, UWS] : SERVERS);

const pinned = os.cpus().length >= 2 && hasTaskset();
function hasTaskset() {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
}
const onCore = (core, cmd, args) => (pinned ? ['taskset', ['-c', String(core), cmd, ...args]] : [cmd, args]);

function buildLoadgen() {
  execFileSync('cargo', ['build', '--release', '--quiet', '--manifest-path', 'bench/loadgen/Cargo.toml', '--target-dir', 'target'],
    { cwd: root, stdio: 'inherit' });
  return path.join(root, 'target', 'release', 'ferrows-loadgen');
}

function startServer(server, port, s) {
  return new Promise((resolve, reject) => {
    const script = server.script;
    const node = [process.execPath, [path.join(root, script)]];
    const [cmd, args] = s.unpinned ? node : onCore(0, ...node);
    const env = { ...process.env, ...server.env, HOST: '127.0.0.1', PORT: String(port), DEFLATE: s.deflate ? '1' : '0' };
    if (s.tls) Object.assign(env, certificate());
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });
    const timer = setTimeout(() => reject(new Error(`${script} did not start`)), 10000);
    child.stdout.on('data', (chunk) => {
      if (String(chunk).includes('listening')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => reject(new Error(`${script} exited with ${code}`)));
  });
}

/** A throwaway self-signed certificate for the TLS scenarios (openssl command line). */
let cert;
function certificate() {
  if (!cert) {
    const dir = require('fs').mkdtempSync(path.join(os.tmpdir(), 'ferrows-bench-'));
    cert = { TLS_CERT: path.join(dir, 'cert.pem'), TLS_KEY: path.join(dir, 'key.pem') };
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
      '-keyout', cert.TLS_KEY, '-out', cert.TLS_CERT, '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost',
      '-addext', 'basicConstraints=critical,CA:FALSE'], { stdio: 'ignore' }); // an end-entity certificate (rustls refuses a CA as one)
  }
  return cert;
}

function runLoad(loadgen, ports, s) {
  const urls = ports.flatMap((port) => ['--url', `${s.tls ? 'wss' : 'ws'}://127.0.0.1:${port}/`]);
  const args = [...urls, '--conns', s.conns, '--size', s.size, '--inflight', inflight ?? s.inflight,
    '--seconds', seconds, '--warmup', 1].map(String);
  if (s.binary) args.push('--binary');
  if (s.deflate) args.push('--deflate', '--json');
  if (s.tls) args.push('--ca', certificate().TLS_CERT);
  if (s.broadcast) args.push('--broadcast');
  const [cmd, cmdArgs] = s.unpinned ? [loadgen, args] : onCore(1, loadgen, args);
  return JSON.parse(execFileSync(cmd, cmdArgs, { encoding: 'utf8', timeout: (seconds + 30) * 1000 }));
}

async function main() {
  const loadgen = buildLoadgen();
  console.log(`echo benchmark, ${seconds} s per run, ${pinned ? 'server pinned to core 0, load generator to core 1' : 'unpinned'}\n`);
  let port = 19000 + Math.floor(Math.random() * 1000);
  const rows = [];
  for (const s of SCENARIOS) {
    const results = {};
    for (const server of serversOf(s)) {
      const redis = s.redis ? new Redis(await freePort()) : null;
      const children = [];
      try {
        if (redis) await redis.start();
        const env = redis ? { ...server.env, REDIS_URL: redis.url } : server.env;
        const ports = Array.from({ length: s.processes || 1 }, () => ++port);
        for (const p of ports) children.push(await startServer({ ...server, env }, p, s));
        results[server.name] = runLoad(loadgen, ports, s);
      } finally {
        for (const child of children) process.kill(-child.pid, 'SIGKILL'); // the whole group: cluster workers too
        if (redis) await redis.stop();
      }
      const r = results[server.name];
      console.log(`${s.name.padEnd(40)} ${server.name.padEnd(10)} ${String(r.msgs_per_sec).padStart(9)} msgs/s ${r.mb_per_sec.toFixed(1).padStart(8)} MB/s  p50 ${r.p50_us} us  p99 ${r.p99_us} us  errors ${r.errors}`);
    }
    for (const name of Object.keys(results).filter((n) => n !== 'ws' && n !== 'uWS.js')) {
      const ratio = results[name].msgs_per_sec / results.ws.msgs_per_sec;
      const vsUws = results['uWS.js'] && results[name].msgs_per_sec / results['uWS.js'].msgs_per_sec;
      rows.push({ scenario: `${s.name} ${name}`, ratio, vsUws });
      console.log(`${''.padEnd(40)} ${name}/ws = ${ratio.toFixed(2)}x${vsUws ? `  ${name}/uWS.js = ${vsUws.toFixed(2)}x` : ''}`);
    }
    console.log('');
  }
  console.log(`ratios (against ws on one thread${UWS ? ', and against uWS.js' : ''}, messages per second):`);
  for (const r of rows) console.log(`  ${r.scenario.padEnd(52)} ${r.ratio.toFixed(2)}x${r.vsUws ? `  ${r.vsUws.toFixed(2)}x uWS.js` : ''}`);
  const svg = option('svg', '');
  if (svg) {
    fs.writeFileSync(svg, chart(rows));
    console.log(`chart: ${svg}`);
  }
}

/** A bar chart of the ratios (against uWS.js where it ran, else against ws), with the 1.0 line marked. */
function chart(rows) {
  const bars = rows.map((r) => ({ label: r.scenario, value: r.vsUws ?? r.ratio, against: r.vsUws ? 'uWS.js' : 'ws' }));
  const max = Math.max(1.2, ...bars.map((b) => b.value));
  const [left, width, rowHeight] = [360, 420, 24];
  const x = (v) => left + (v / max) * width;
  const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');
  const height = bars.length * rowHeight + 40;
  const items = bars.map((b, i) => {
    const y = 20 + i * rowHeight;
    return `<text x="${left - 8}" y="${y + 15}" text-anchor="end">${escape(b.label)}</text>` +
      `<rect x="${left}" y="${y + 3}" width="${(x(b.value) - left).toFixed(1)}" height="16" fill="${b.value >= 1 ? '#2a9d4a' : '#d9822b'}"/>` +
      `<text x="${(x(b.value) + 4).toFixed(1)}" y="${y + 15}">${b.value.toFixed(2)}× ${b.against}</text>`;
  }).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 110}" height="${height}" font-family="sans-serif" font-size="12">
<line x1="${x(1).toFixed(1)}" y1="10" x2="${x(1).toFixed(1)}" y2="${height - 10}" stroke="#555" stroke-dasharray="4 3"/>
${items}
</svg>
`;
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
