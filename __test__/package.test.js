'use strict';
// The package as a user gets it: `npm run package`'s two tarballs installed into an empty project with no Rust
// toolchain on PATH and an empty npm cache, then every face required and an echo run with the ws client.
const test = require('ava');
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const root = path.join(__dirname, '..');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrows-user-'));
test.after.always(() => fs.rmSync(work, { recursive: true, force: true }));

// npm's own variables (from `npm test`) would point the inner npm at this checkout; cargo and rustc are hidden.
const hasRust = (dir) => ['cargo', 'rustc'].some((tool) => fs.existsSync(path.join(dir, tool)));
const userEnv = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
userEnv.PATH = process.env.PATH.split(path.delimiter).filter((dir) => !hasRust(dir)).join(path.delimiter);
userEnv.npm_config_cache = path.join(work, 'npm-cache');
userEnv.WS_CLIENT = require.resolve('ws');

function project(name, tarballs, flags = [], env = userEnv) {
  const dir = path.join(work, name);
  fs.mkdirSync(dir);
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  const started = Date.now();
  const result = spawnSync('npm', ['install', '--no-audit', '--no-fund', ...flags, ...tarballs], { cwd: dir, env, encoding: 'utf8' });
  return { dir, status: result.status, stdout: result.stdout, stderr: result.stderr, seconds: (Date.now() - started) / 1000 };
}

const node = (dir, args, env = userEnv) => spawnSync(process.execPath, args, { cwd: dir, env, encoding: 'utf8', timeout: 30000 });

function packTarballs() {
  const dist = path.join(work, 'dist');
  if (!fs.existsSync(dist)) execFileSync(process.execPath, [path.join(root, 'scripts', 'package.js'), dist], { cwd: root, stdio: 'pipe' });
  return fs.readdirSync(dist).map((file) => path.join(dist, file));
}

// Every face loads; a sack server and a ws-face server each echo to the real ws client.
const USER_SCRIPT = `
const WebSocket = require(process.env.WS_CLIENT);
const { WebSocket: Sack } = require('ferrows');
const { WebSocketServer } = require('ferrows/ws');
require('ferrows/websocket'); require('ferrows/node-websocket-server');
function echo(port) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket('ws://127.0.0.1:' + port + '/');
    ws.on('open', () => ws.send('hello from a user'));
    ws.on('message', (data) => { ws.close(); resolve(String(data)); });
    ws.on('error', reject);
  });
}
(async () => {
  const sack = Sack.Server({ address: '127.0.0.1', port: 0 });
  sack.onconnect = (ws) => { ws.onmessage = (msg) => ws.send(msg); };
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  await new Promise((resolve) => wss.on('listening', resolve));
  const replies = [await echo(sack.port), await echo(wss.address().port)];
  const addon = Object.keys(require.cache).find((file) => /ferrows[^/]*\.node$/.test(file));
  console.log(JSON.stringify({ replies, addon: require('path').relative(process.cwd(), addon) }));
  sack.close(); wss.close();
})().catch((err) => { console.error(err); process.exit(1); });
`;

test.serial('the packed tarballs install without Rust, and every face runs from the prebuilt addon', async (t) => {
  t.timeout(300000);
  const tarballs = packTarballs();
  t.is(tarballs.length, 2);
  const { dir, status, stderr, seconds } = project('user', tarballs);
  t.is(status, 0, stderr);
  t.log(`installed ${tarballs.map((f) => `${path.basename(f)} (${(fs.statSync(f).size / 1048576).toFixed(2)} MiB)`).join(', ')} in ${seconds.toFixed(1)} s`);

  const run = node(dir, ['-e', USER_SCRIPT]);
  t.is(run.status, 0, run.stderr);
  const { replies, addon } = JSON.parse(run.stdout);
  t.deepEqual(replies, ['hello from a user', 'hello from a user']);
  t.is(addon, path.join('node_modules', 'ferrows-linux-x64-gnu', 'ferrows.linux-x64-gnu.node'));

  // The install step itself, as npm runs it where the user approved ferrows's install script.
  const install = node(path.join(dir, 'node_modules', 'ferrows'), ['scripts/install.js']);
  t.is(install.status, 0, install.stderr);
  t.regex(install.stdout, /using the prebuilt addon ferrows-linux-x64-gnu@0\.1\.0/);

  // Without the platform package and without Rust: the install fails with one message naming both ways out...
  const withoutPrebuilt = tarballs.filter((file) => !file.includes('linux-x64'));
  const bare = project('bare', withoutPrebuilt);
  t.not(bare.status, 0);
  t.regex(bare.stderr, /the prebuilt package ferrows-linux-x64-gnu is not installed, and there is no Rust toolchain/);
  t.regex(bare.stderr, /npm install --include=optional\), or install Rust/);
  // ...and where install scripts did not run, so does require().
  const unbuilt = project('unbuilt', withoutPrebuilt, ['--ignore-scripts']);
  t.is(unbuilt.status, 0, unbuilt.stderr);
  const loaded = node(unbuilt.dir, ['-e', "require('ferrows')"]);
  t.not(loaded.status, 0);
  t.regex(loaded.stderr, /neither the prebuilt package ferrows-linux-x64-gnu nor a local build/);
  t.regex(loaded.stderr, /npm install --include=optional/);
});

test.serial('without a prebuilt package, an installed tarball builds the addon from source with cargo', async (t) => {
  t.timeout(600000);
  const tarball = packTarballs().find((file) => !file.includes('linux-x64'));
  // Rust on PATH this time; a target folder of its own, kept between runs so that only ferrows itself recompiles.
  const env = { ...userEnv, PATH: process.env.PATH, CARGO_TARGET_DIR: path.join(root, 'target', 'package-test') };
  const { dir, status, stdout, stderr } = project('source', [tarball], ['--foreground-scripts'], env);
  t.is(status, 0, stderr);
  t.regex(stdout, /building the native addon from source, because the prebuilt package ferrows-linux-x64-gnu is not installed/);
  const run = node(dir, ['-e', USER_SCRIPT], env);
  t.is(run.status, 0, run.stderr);
  const { replies, addon } = JSON.parse(run.stdout);
  t.deepEqual(replies, ['hello from a user', 'hello from a user']);
  t.is(addon, path.join('node_modules', 'ferrows', 'ferrows.linux-x64-gnu.node'));
});
