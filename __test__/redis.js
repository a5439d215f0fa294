'use strict';
// A real redis-server (Debian's package) for the backplane tests and the topic benchmarks: its own instance on a
// free loopback port, no persistence, stopped when the test (or benchmark run) ends.
const { spawn } = require('child_process');
const net = require('net');

function freePort() {
  return new Promise((resolve, reject) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
    probe.on('error', reject);
  });
}

/** Resolves once a PING on `port` gets PONG, or rejects after `ms`. */
async function answers(port, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const ok = await new Promise((resolve) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
      socket.on('data', (data) => { socket.destroy(); resolve(String(data).startsWith('+PONG')); });
      socket.on('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`redis-server on port ${port} did not answer`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

class Redis {
  /** With `tls` ({ port, cert, key }: a port and PEM files), clients use TLS on that port (`url` is rediss://). */
  constructor(port, tls) {
    this.port = port;
    this.tls = tls;
    this.url = tls ? `rediss://127.0.0.1:${tls.port}` : `redis://127.0.0.1:${port}`;
    this.process = null;
  }

  async start() {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
    if (this.tls) {
      args.push('--tls-port', String(this.tls.port), '--tls-cert-file', this.tls.cert, '--tls-key-file', this.tls.key, '--tls-auth-clients', 'no');
    }
    this.process = spawn('redis-server', args, { stdio: 'ignore' });
    const failed = new Promise((_, reject) => this.process.once('error', (err) => reject(new Error(`cannot run redis-server (install Debian's redis-server): ${err.message}`))));
    await Promise.race([answers(this.port), failed]);
  }

  /** Stops the server (no persistence: its streams are gone). */
  async stop() {
    const proc = this.process;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
  }
}

/** A running redis-server on a free port, stopped when the test `t` ends (see Redis for `tls`). */
async function startRedis(t, tls) {
  const redis = new Redis(await freePort(), tls);
  t.teardown(() => redis.stop());
  await redis.start();
  return redis;
}

module.exports = { startRedis, freePort, Redis };
