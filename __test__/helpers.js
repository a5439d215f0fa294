'use strict';
// Shared by the tests: a server on a free loopback port, and a real `ws` client with every wait bounded.
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const WebSocket = require('ws');
const { WebSocket: Ferrows } = require('..');

/** A sack-style server on a free loopback port, closed when the test `t` ends whatever its outcome. */
function startServer(t, options = {}, setup = () => {}) {
  const server = Ferrows.Server({ address: '127.0.0.1', port: 0, ...options });
  t.teardown(() => server.close());
  setup(server);
  return server;
}

/** Resolves with the value `emitter` emits as `event`, or rejects after `ms`. */
function once(emitter, event, ms = 5000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for '${event}'`)), ms);
    emitter.once(event, (...args) => {
      clearTimeout(timer);
      resolve(args.length > 1 ? args : args[0]);
    });
  });
}

/** An open `ws` client; messages that arrive with the open are kept for `messages()`. */
async function connect(server, path = '/', options = {}) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}${path}`, options.protocols, options);
  ws.early = [];
  const keep = (data, isBinary) => ws.early.push({ data, isBinary });
  ws.on('message', keep);
  await once(ws, 'open');
  setImmediate(() => ws.off('message', keep));
  return ws;
}

/** Collects `count` messages from a `ws` client. */
function messages(ws, count, ms = 5000) {
  return new Promise((resolve, reject) => {
    const got = ws.early ? ws.early.splice(0) : [];
    if (got.length >= count) return resolve(got.slice(0, count));
    const timer = setTimeout(() => reject(new Error(`got ${got.length} of ${count} messages`)), ms);
    ws.on('message', function onMessage(data, isBinary) {
      got.push({ data, isBinary });
      if (got.length === count) {
        clearTimeout(timer);
        ws.off('message', onMessage);
        resolve(got);
      }
    });
  });
}

/** Sends `data` from a `ws` client and resolves with the next message it gets, as a string. */
async function ask(ws, data) {
  const reply = messages(ws, 1);
  ws.send(data);
  return String((await reply)[0].data);
}

function closeServer(server) {
  return new Promise((resolve) => {
    if (server.readyState === 3) return resolve();
    server.on('close', resolve);
    server.close();
  });
}

/**
 * `npm start`'s echo server (examples/echo.js) in a process of its own on a free port, killed when the test `t`
 * ends; with `openFiles`, under that descriptor limit (`ulimit -n`).
 */
function startEcho(t, { openFiles, env = {} } = {}) {
  const script = path.join(__dirname, '..', 'examples', 'echo.js');
  const limit = openFiles ? `ulimit -n ${openFiles} && ` : '';
  const child = spawn('sh', ['-c', `${limit}exec "${process.execPath}" "${script}"`], {
    env: { ...process.env, HOST: '127.0.0.1', PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('echo example did not start')), 10000);
    child.stdout.on('data', (chunk) => {
      const match = /listening ws:\/\/127\.0\.0\.1:(\d+)\//.exec(String(chunk));
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]) });
      }
    });
  });
}

/** A process's resident memory now and at its peak, in bytes, from /proc. */
function memoryOf(pid) {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)[1]) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

module.exports = { startEcho, memoryOf, startServer, once, connect, messages, ask, closeServer, WebSocket };
