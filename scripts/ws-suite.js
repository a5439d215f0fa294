'use strict';
// Runs the ws package's own test suite (websocket-server, websocket and create-websocket-stream tests) with ws's
// server class swapped for ferrows/ws and ws's own client as the peer.
//
// Usage: node scripts/ws-suite.js <ws git checkout or git dir> [--ref 8.18.3] [--only <substring>] [--keep]
// The tests come from a checkout of github.com/websockets/ws at the tag of the ws client this repository uses;
// mocha comes from the npm registry. Each test runs alone (a test that breaks its peer cannot take others down)
// twice: against ws's own server, then against ferrows. A test is
// - "passed" when it passes against ferrows;
// - "not applicable" when it fails against ws itself here, or reads a private field of ws's server-side
//   connection (`_socket`, `_receiver`, `_sender`: ferrows keeps the socket and the protocol in Rust), or
//   expects an empty Buffer to be ws's internal EMPTY_BUFFER object itself;
// - "failed" otherwise. The exit code is 1 when any test failed.
const { execFileSync, spawn } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const { option: optionIn, positional } = require('./options.js');

const argv = process.argv.slice(2);
const option = (name, fallback) => optionIn(argv, name, fallback);
const [source] = positional(argv, ['ref', 'only']);
if (!source) {
  console.error('usage: node scripts/ws-suite.js <ws git checkout or git dir> [--ref TAG] [--only TEXT] [--keep]');
  process.exit(2);
}
const ref = option('ref', require(path.join(root, 'node_modules/ws/package.json')).version);
const only = option('only', '');
const TEST_FILES = ['test/websocket-server.test.js', 'test/websocket.test.js', 'test/create-websocket-stream.test.js'];
const PRIVATE = 'ws-suite: reads ws\'s private field';
const PER_TEST_TIMEOUT_MS = 30000;

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ws-suite-'));

/** ws's tests, lib and index at `ref`, from a git directory or a checkout. */
function extract() {
  const gitDir = fs.existsSync(path.join(source, '.git')) ? path.join(source, '.git') : source;
  const archive = execFileSync('git', ['--git-dir', gitDir, 'archive', ref, 'test', 'lib', 'index.js'], { maxBuffer: 1 << 28 });
  execFileSync('tar', ['x', '-C', work], { input: archive });
  fs.renameSync(path.join(work, 'index.js'), path.join(work, 'index.ws.js'));
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'ws-suite', private: true }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--no-package-lock', 'mocha@10'], { cwd: work, stdio: 'inherit' });
}

/** `require('..')` in ws's tests: ws's client, with ferrows/ws's server (and server-side class) in place of ws's. */
const FERROWS_INDEX = `'use strict';
const WebSocket = require('./lib/websocket');
const ferrows = require(${JSON.stringify(path.join(root, 'lib/faces/ws.js'))});
for (const field of ['_socket', '_receiver', '_sender']) {
  Object.defineProperty(ferrows.WebSocket.prototype, field, {
    configurable: true,
    get() { throw new Error(${JSON.stringify(PRIVATE)} + ' ' + field); },
  });
}
WebSocket.createWebSocketStream = require('./lib/stream');
WebSocket.Server = ferrows.WebSocketServer;
WebSocket.WebSocketServer = ferrows.WebSocketServer;
WebSocket.Receiver = require('./lib/receiver');
WebSocket.Sender = require('./lib/sender');
// The class the \`WebSocket\` option takes is the server-side one: ferrows/ws's.
WebSocket.WebSocket = ferrows.WebSocket;
module.exports = WebSocket;
`;

function useServer(which) {
  const text = which === 'ws' ? fs.readFileSync(path.join(work, 'index.ws.js'), 'utf8') : FERROWS_INDEX;
  fs.writeFileSync(path.join(work, 'index.js'), text);
}

function listTests() {
  useServer('ws');
  const out = execFileSync(path.join(work, 'node_modules/.bin/mocha'), ['--dry-run', '--reporter', 'json', ...TEST_FILES], { cwd: work, maxBuffer: 1 << 26 });
  return JSON.parse(out).tests.map((t) => ({ title: t.fullTitle, file: path.relative(work, t.file) }))
    .filter((t) => t.title.includes(only));
}

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Runs one test alone: { passed, output }. */
function runOne(test) {
  return new Promise((resolve) => {
    const child = spawn(path.join(work, 'node_modules/.bin/mocha'),
      ['--exit', '--timeout', '5000', '--reporter', 'dot', '--grep', `^${escape(test.title)}$`, test.file], { cwd: work });
    let output = '';
    child.stdout.on('data', (d) => { output += d; });
    child.stderr.on('data', (d) => { output += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), PER_TEST_TIMEOUT_MS);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ passed: code === 0 && /\b1 passing\b/.test(output), output });
    });
  });
}

async function runAll(tests, which) {
  useServer(which);
  const results = new Array(tests.length);
  let next = 0;
  const lanes = Math.max(1, Math.min(2, os.availableParallelism?.() ?? 2));
  await Promise.all(Array.from({ length: lanes }, async () => {
    while (next < tests.length) {
      const i = next++;
      results[i] = await runOne(tests[i]);
    }
  }));
  return results;
}

async function main() {
  extract();
  const tests = listTests();
  console.log(`ws ${ref}: ${tests.length} tests; each alone against ws's server, then against ferrows/ws`);
  const baseline = await runAll(tests, 'ws');
  const ours = await runAll(tests, 'ferrows');
  const passed = [];
  const notApplicable = [];
  const failed = [];
  tests.forEach((test, i) => {
    if (ours[i].passed) passed.push(test);
    else if (!baseline[i].passed) notApplicable.push({ ...test, why: 'fails against ws itself on this machine' });
    else if (ours[i].output.includes(PRIVATE)) {
      const field = ours[i].output.match(/private field (\w+)/)[1];
      notApplicable.push({ ...test, why: `reads the server-side connection's ${field}` });
    } else if (/not reference-equal:\s*\n\s*Buffer\(0\)/.test(ours[i].output)) {
      notApplicable.push({ ...test, why: 'expects ws\'s own EMPTY_BUFFER object (identity, not content)' });
    } else failed.push({ ...test, output: ours[i].output });
  });
  for (const t of notApplicable) console.log(`  n/a   ${t.title} (${t.why})`);
  for (const t of failed) {
    console.log(`  FAIL  ${t.title}`);
    console.log(t.output.split('\n').filter((l) => l.trim() && !/^\s+at /.test(l)).slice(-12).map((l) => `        ${l}`).join('\n'));
  }
  console.log(`\n${passed.length} passed, ${failed.length} failed, ${notApplicable.length} not applicable (of ${tests.length})`);
  if (!argv.includes('--keep')) fs.rmSync(work, { recursive: true, force: true });
  else console.log(`kept ${work}`);
  process.exitCode = failed.length ? 1 : 0;
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 2;
});
