'use strict';
const test = require('ava');
const net = require('net');
const tls = require('tls');
const http = require('http');
const WebSocket = require('ws');
const { WebSocket: Ferrows } = require('..');
const { startServer, once, messages, closeServer } = require('./helpers.js');
const { selfSigned, encryptedKey } = require('./certs.js');

const a = selfSigned('a.test');
const b = selfSigned('b.test', '*.b.test');

function secureEcho(t, options) {
  return startServer(t, options, (s) => {
    s.onconnect = function (ws) {
      ws.onmessage = (m) => ws.send(m);
      ws.send(JSON.stringify(ws.connection));
    };
  });
}

async function wss(server, servername, ca) {
  // Identity is checked by certificate choice here, not by name (a fallback certificate has another name).
  const ws = new WebSocket(`wss://127.0.0.1:${server.port}/`, { ca, servername, checkServerIdentity: () => undefined });
  let peer;
  ws.on('upgrade', (res) => { peer = res.socket.getPeerCertificate().subject.CN; });
  const first = messages(ws, 1);
  await once(ws, 'open');
  const info = JSON.parse(String((await first)[0].data));
  return { ws, peer, info };
}

test('wss:// echo through the ws client trusting the certificate, with TLS details on the connection', async (t) => {
  const server = secureEcho(t, { cert: a.cert, key: a.key });
  const { ws, peer, info } = await wss(server, 'a.test', a.cert);
  t.is(peer, 'a.test');
  t.like(info, { secure: true, servername: 'a.test', tlsVersion: 'TLSv1.3' });
  t.false('alpn' in info); // the ws client offers no ALPN
  const echoed = messages(ws, 2);
  ws.send('secret');
  ws.send(Buffer.alloc(100000, 5));
  const got = await echoed;
  t.is(String(got[0].data), 'secret');
  t.true(got[1].data.equals(Buffer.alloc(100000, 5)));
  ws.close();
  await once(ws, 'close');
  await closeServer(server);
});

test('many large messages in flight over TLS all come back (records that outgrow rustls\'s plaintext buffer)', async (t) => {
  const server = secureEcho(t, { cert: a.cert, key: a.key });
  const { ws } = await wss(server, 'a.test', a.cert);
  const sent = Array.from({ length: 40 }, (_, i) => Buffer.alloc(16384 + i, i));
  const echoed = messages(ws, sent.length, 10000);
  for (const m of sent) ws.send(m);
  const got = await echoed;
  t.true(got.every((m, i) => m.data.equals(sent[i])));
  ws.terminate();
  await closeServer(server);
});

test('SNI picks the certificate by server name, wildcards included; unknown names fall back to the top level', async (t) => {
  const server = secureEcho(t, { cert: a.cert, key: a.key, hosts: [{ host: ['b.test', '*.b.test'], cert: b.cert, key: b.key }] });
  for (const [name, ca, cn] of [['b.test', b.cert, 'b.test'], ['x.b.test', b.cert, 'b.test'], ['a.test', a.cert, 'a.test'], ['other.test', a.cert, 'a.test']]) {
    const { ws, peer } = await wss(server, name, ca);
    t.is(peer, cn, name);
    ws.terminate();
  }
  await closeServer(server);
});

test('without a top-level certificate an unknown name fails the handshake and reports lowError 7', async (t) => {
  const reports = [];
  const server = startServer(t, { hosts: [{ host: 'b.test', cert: b.cert, key: b.key }] }, (s) => {
    s.onlowError = function (code, info, extra) { reports.push([code, extra, info.remoteAddress]); };
    s.onerror = function (info) { reports.push(['error', info.remoteAddress]); };
  });
  const socket = tls.connect({ host: '127.0.0.1', port: server.port, servername: 'nobody.test', rejectUnauthorized: false });
  const err = await once(socket, 'error');
  t.regex(String(err.message || err.code), /alert|handshake|unrecognized|ECONNRESET/i);
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(reports, [[7, 'nobody.test', '127.0.0.1'], ['error', '127.0.0.1']]);
  await closeServer(server);
});

test('an encrypted key opens with the right passphrase; a wrong one, a foreign key and bad PEM are clear errors', async (t) => {
  const enc = encryptedKey(a, 'open sesame');
  const server = secureEcho(t, { cert: a.cert, key: enc, passphrase: 'open sesame' });
  const { ws } = await wss(server, 'a.test', a.cert);
  ws.terminate();
  await closeServer(server);
  const bad = (options) => () => Ferrows.Server({ address: '127.0.0.1', port: 0, ...options });
  t.throws(bad({ cert: a.cert, key: enc, passphrase: 'wrong' }), { message: /wrong passphrase/ });
  t.throws(bad({ cert: a.cert, key: enc }), { message: /passphrase is needed/ });
  t.throws(bad({ cert: a.cert, key: b.key }), { message: /does not match the certificate/ });
  t.throws(bad({ cert: 'not a pem', key: a.key }), { message: /no certificate found/ });
  t.throws(bad({ cert: a.cert, key: 'not a pem' }), { message: /cannot read the private key/ });
  t.throws(bad({ cert: a.cert }), { instanceOf: TypeError, message: /needs both 'cert' and 'key'/ });
});

test('a plain client on the TLS port: closed without disableSSL, answered (redirect) with it', async (t) => {
  const seen = [];
  const server = startServer(t, { cert: a.cert, key: a.key }, (s) => {
    s.onlowError = function (code, info, extra) {
      seen.push([code, Buffer.from(extra).toString('latin1').split('\r\n')[0]]);
      if (info.remotePort % 1 === 0 && Buffer.from(extra).includes('/upgrade-me')) this.disableSSL();
    };
    s.onrequest = function (req, res) {
      res.writeHead(301, { Location: `https://localhost:${server.port}${req.url}` });
      res.end(`redirect=${req.redirect}`);
    };
  });
  const refused = await new Promise((resolve) => {
    http.get({ host: '127.0.0.1', port: server.port, path: '/plain' }, () => resolve('answered')).on('error', (e) => resolve(e.code));
  });
  t.regex(refused, /ECONNRESET|socket hang up/);
  const res = await new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port: server.port, path: '/upgrade-me' }, (r) => {
      let body = '';
      r.on('data', (c) => { body += c; });
      r.on('end', () => resolve({ status: r.statusCode, location: r.headers.location, body }));
    }).on('error', reject);
  });
  t.deepEqual(res, { status: 301, location: `https://localhost:${server.port}/upgrade-me`, body: 'redirect=true' });
  t.deepEqual(seen, [[1, 'GET /plain HTTP/1.1'], [1, 'GET /upgrade-me HTTP/1.1']]);
  t.throws(() => server.disableSSL(), { message: /only valid during a lowError/ });
  await closeServer(server);
});

test('garbage instead of a ClientHello is closed and reported, and the server goes on', async (t) => {
  const errors = [];
  const server = secureEcho(t, { cert: a.cert, key: a.key, handshakeTimeout: 1000 });
  server.onerror = function (info) { errors.push(info.localPort); };
  server.onlowError = function (code) { errors.push(`low ${code}`); };
  for (const junk of [Buffer.from('\x16\x03\x01\x00\x05garbage-after-a-record-header'), Buffer.from('\x00\x01\x02 definitely not TLS')]) {
    const socket = net.connect(server.port, '127.0.0.1', () => socket.write(junk));
    socket.on('error', () => {});
    socket.resume(); // read what the server says (an alert), so its close is seen
    await once(socket, 'close');
  }
  const { ws } = await wss(server, 'a.test', a.cert);
  ws.terminate();
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(errors, ['low 4', server.port, 'low 1']);
  await closeServer(server);
});
