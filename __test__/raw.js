'use strict';
// A minimal WebSocket client over a raw TCP socket, for sending what real clients never would: unmasked,
// oversized or malformed frames. It reads the server's frames back so tests can check the close codes.
const net = require('net');
const crypto = require('crypto');

function frame(opcode, payload = Buffer.alloc(0), { fin = true, mask = true, rsv = 0 } = {}) {
  const data = Buffer.from(payload);
  const len = data.length;
  const head = [((fin ? 0x80 : 0) | (rsv << 4) | opcode)];
  const maskBit = mask ? 0x80 : 0;
  if (len < 126) head.push(maskBit | len);
  else if (len < 65536) head.push(maskBit | 126, len >> 8, len & 255);
  else {
    head.push(maskBit | 127);
    const big = Buffer.alloc(8);
    big.writeBigUInt64BE(BigInt(len));
    head.push(...big);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = crypto.randomBytes(4);
  const masked = Buffer.from(data.map((b, i) => b ^ key[i & 3]));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

/** Parses the server's (unmasked) frames out of `buf`. */
function parseFrames(buf) {
  const frames = [];
  let pos = 0;
  while (buf.length - pos >= 2) {
    let len = buf[pos + 1] & 0x7f;
    let start = pos + 2;
    if (len === 126) { len = buf.readUInt16BE(pos + 2); start += 2; }
    else if (len === 127) { len = Number(buf.readBigUInt64BE(pos + 2)); start += 8; }
    if (buf.length < start + len) break;
    frames.push({ fin: !!(buf[pos] & 0x80), rsv1: !!(buf[pos] & 0x40), opcode: buf[pos] & 0x0f, payload: buf.subarray(start, start + len) });
    pos = start + len;
  }
  return frames;
}

/** Opens a raw connection through the upgrade; resolves with { socket, frames(): Promise<all frames until close> }. */
function rawConnect(port, path = '/', extraHeaders = '') {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let upgraded = false;
    const ended = new Promise((res) => socket.on('close', () => res(parseFrames(buf))));
    socket.on('error', () => {});
    socket.on('connect', () => socket.write(
      `GET ${path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n${extraHeaders}\r\n`));
    socket.on('data', (chunk) => {
      buf = Buffer.concat([buf, chunk]);
      if (upgraded) return;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!buf.subarray(0, 12).toString().startsWith('HTTP/1.1 101')) return reject(new Error(buf.toString()));
      upgraded = true;
      const head = buf.subarray(0, end + 4).toString('latin1');
      buf = buf.subarray(end + 4);
      const received = () => parseFrames(buf);
      /** Resolves with the first `n` frames once they are in, or rejects after `ms`. */
      const frames = (n, ms = 5000) => new Promise((res, rej) => {
        const started = Date.now();
        (function poll() {
          const got = received();
          if (got.length >= n) return res(got.slice(0, n));
          if (Date.now() - started > ms) return rej(new Error(`got ${got.length} of ${n} frames`));
          setTimeout(poll, 10);
        })();
      });
      resolve({ socket, head, closed: () => ended, received, frames });
    });
  });
}

function closeCode(frames) {
  const close = frames.find((f) => f.opcode === 8);
  return close && close.payload.length >= 2 ? close.payload.readUInt16BE(0) : close ? 1005 : undefined;
}

module.exports = { frame, parseFrames, rawConnect, closeCode };
