'use strict';
const test = require('ava');
const http = require('http');
const net = require('net');
const { startServer, closeServer, once } = require('./helpers.js');

function request(port, { path = '/', method = 'GET', body, headers = {}, agent } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, agent }, (res) => {
      const localPort = res.socket.localPort;
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, message: res.statusMessage, headers: res.headers, body: Buffer.concat(chunks).toString(), localPort }));
    });
    req.on('error', reject);
    req.setTimeout(5000, () => req.destroy(new Error('timeout')));
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Sends raw bytes and resolves with everything the server sent until it closed (or `ms` passed). */
function raw(port, bytes, ms = 3000) {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const chunks = [];
    const done = () => resolve(Buffer.concat(chunks).toString('latin1'));
    socket.on('data', (c) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', done);
    setTimeout(() => { socket.destroy(); }, ms);
  });
}

function appServer(t, options = {}) {
  return startServer(t, options, (s) => {
    s.onrequest = function (req, res) {
      const body = [];
      req.on('data', (c) => body.push(c));
      req.on('end', () => {
        const text = Buffer.concat(body).toString();
        switch (req.url.split('?')[0]) {
          case '/echo':
            res.setHeader('Content-Type', 'text/plain');
            res.setHeader('X-Seen', req.headers['X-Test'] ?? 'none');
            return res.end(`${req.method} ${req.url} ${req.httpVersion} ${JSON.stringify(req.CGI)} ${text} ${req.content} ${req.bytes?.byteLength ?? 0} ${req.version} ${req.socket.remoteAddress}`);
          case '/chunked':
            res.write('one,');
            res.write(Buffer.from('two,'));
            return res.end(new Uint8Array([0x74, 0x68, 0x72, 0x65, 0x65]));
          case '/status':
            return res.end(404);
          case '/reason':
            res.writeHead(418, 'Short And Stout', { 'X-A': '1' });
            t.throws(() => res.writeHead(200), { message: /Headers have already been set/ });
            return res.end('tea');
          case '/teapot':
            res.writeHead(418);
            return res.end();
          case '/close':
            res.setHeader('Connection', 'close');
            return res.end('bye');
          case '/slow':
            return setTimeout(() => res.end('late'), 100);
          default:
            return res.end(`path ${req.url}`);
        }
      });
    };
  });
}

test('GET and POST reach the request handler with sack and Node fields', async (t) => {
  const server = appServer(t);
  const get = await request(server.port, { path: '/echo?a=1&b=two', headers: { 'X-Test': 'yes' } });
  t.is(get.status, 200);
  t.is(get.headers['content-type'], 'text/plain');
  t.is(get.headers['x-seen'], 'yes');
  t.is(get.headers['content-length'], String(Buffer.byteLength(get.body)));
  t.is(get.body, 'GET /echo?a=1&b=two 1.1 {"a":"1","b":"two"}  null 0 101 127.0.0.1');
  const post = await request(server.port, { path: '/echo', method: 'POST', body: 'héllo' });
  t.is(post.body, 'POST /echo 1.1 {} héllo héllo 6 101 127.0.0.1');
  const chunkedPost = await request(server.port, { path: '/echo', method: 'POST', body: 'x'.repeat(100), headers: { 'Transfer-Encoding': 'chunked' } });
  t.true(chunkedPost.body.includes(` ${'x'.repeat(100)} `));
  await closeServer(server);
});

test('responses: chunked when the length is unknown, status by number, real reason phrases, HEAD without body', async (t) => {
  const server = appServer(t);
  const chunked = await request(server.port, { path: '/chunked' });
  t.is(chunked.headers['transfer-encoding'], 'chunked');
  t.is(chunked.body, 'one,two,three');
  const missing = await request(server.port, { path: '/status' });
  t.is(missing.status, 404);
  t.is(missing.message, 'Not Found');
  const reason = await request(server.port, { path: '/reason' });
  t.is(reason.status, 418);
  t.is(reason.message, 'Short And Stout');
  t.is(reason.body, 'tea');
  const head = await request(server.port, { path: '/echo', method: 'HEAD' });
  t.is(head.body, '');
  await closeServer(server);
});

test('keep-alive reuses the connection; Connection: close is honoured', async (t) => {
  const server = appServer(t);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const first = await request(server.port, { path: '/a', agent });
  const second = await request(server.port, { path: '/b', agent });
  t.is(second.body, 'path /b');
  t.is(second.localPort, first.localPort);
  t.is(second.headers.connection, 'keep-alive');
  agent.destroy();
  const answer = await raw(server.port, 'GET /close HTTP/1.1\r\nHost: x\r\n\r\n');
  t.regex(answer, /^HTTP\/1\.1 200 OK\r\n[\s\S]*Connection: close\r\n\r\nbye$/);
  const old = await raw(server.port, 'GET /x HTTP/1.0\r\n\r\n');
  t.regex(old, /Connection: close\r\n\r\npath \/x$/);
  await closeServer(server);
});

test('pipelined requests are answered in order, a slow answer holding back the ones after it', async (t) => {
  const server = appServer(t);
  const answer = await raw(server.port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\nGET /three HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const bodies = answer.split('HTTP/1.1 200 OK').slice(1).map((r) => r.split('\r\n\r\n')[1]);
  t.deepEqual(bodies, ['late', 'path /two', 'path /three']);
  await closeServer(server);
});

test('bad input gets 400, 413, 414 and 431; a slow client is dropped', async (t) => {
  const server = appServer(t, { maxBodySize: 1000, handshakeTimeout: 300 });
  t.regex(await raw(server.port, 'GET / HTTP/1.1\r\nBad Header\r\n\r\n'), /^HTTP\/1\.1 400 /);
  t.regex(await raw(server.port, 'POST / HTTP/1.1\r\nContent-Length: 5000\r\n\r\n'), /^HTTP\/1\.1 413 /);
  t.regex(await raw(server.port, `POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'a'.repeat(2048)}\r\n0\r\n\r\n`), /^HTTP\/1\.1 413 /);
  t.regex(await raw(server.port, `GET /${'a'.repeat(20000)} HTTP/1.1\r\n\r\n`), /^HTTP\/1\.1 414 /);
  t.regex(await raw(server.port, `GET / HTTP/1.1\r\nX: ${'a'.repeat(20000)}\r\n\r\n`), /^HTTP\/1\.1 431 /);
  t.regex(await raw(server.port, 'POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'), /^HTTP\/1\.1 400 /);
  const slow = await raw(server.port, 'POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc', 5000);
  t.regex(slow, /^HTTP\/1\.1 408 /);
  await closeServer(server);
});

test('without a request handler a plain request gets 426 Upgrade Required', async (t) => {
  const server = startServer(t);
  const res = await request(server.port);
  t.is(res.status, 426);
  t.is(res.headers.upgrade, 'websocket');
  await closeServer(server);
});

test('a request handler that throws answers 500, and the error reaches uncaughtException', async (t) => {
  const { execFile } = require('child_process');
  const path = require('path');
  const stdout = await new Promise((resolve) => {
    execFile(process.execPath, [path.join(__dirname, 'fixtures', 'throwing-request.js')], { timeout: 15000 }, (err, out) => resolve(out));
  });
  t.regex(stdout, /status 500/);
  t.regex(stdout, /uncaught: handler broke/);
});

test('HTTP and WebSocket share the port: a request after keep-alive requests can still upgrade', async (t) => {
  const WebSocket = require('ws');
  const server = appServer(t);
  server.onconnect = function (ws) { ws.send('upgraded'); };
  const res = await request(server.port, { path: '/x' });
  t.is(res.body, 'path /x');
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/`);
  const [msg] = await once(ws, 'message');
  t.is(String(msg), 'upgraded');
  ws.terminate();
  await closeServer(server);
});
