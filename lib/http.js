'use strict';
// Request and response objects for plain HTTP on a ferrows port (sack's `request` event), over a native
// exchange. They carry sack's fields and the Node `http` names people reach for; framing, keep-alive and
// limits are handled natively.
const { EventEmitter } = require('events');
const { asPayload } = require('./payload.js');

const HEADERS_SENT = 'Headers have already been set; cannot change resulting status or headers';

function headersObject(flat) {
  const headers = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i];
    headers[name] = name in headers ? `${headers[name]}, ${flat[i + 1]}` : flat[i + 1];
  }
  return headers;
}

/** sack's `connection` object, from a native connection or exchange (anything with `remote` and `local`). */
function socketInfo(native, headers) {
  const remote = native.remote;
  const local = native.local;
  const hostHeader = Object.keys(headers).find((n) => n.toLowerCase() === 'host');
  return {
    remoteFamily: remote.family, remoteAddress: remote.address, remotePort: remote.port,
    localFamily: local.family, localAddress: local.address, localPort: local.port,
    headers, hostname: hostHeader ? headers[hostHeader].replace(/:\d+$/, '') : undefined,
  };
}

/** Splits a request target into the path and its query parameters (sack's `url` and `CGI`). */
function splitTarget(target) {
  const q = target.indexOf('?');
  return {
    path: q < 0 ? target : target.slice(0, q),
    CGI: Object.fromEntries(new URLSearchParams(q < 0 ? '' : target.slice(q + 1))),
  };
}

class HttpRequest extends EventEmitter {
  constructor(exchange, info) {
    super();
    const body = info.body;
    this.method = info.method;
    this.url = info.url; // the whole request target, query included, as in Node and sack
    this.CGI = splitTarget(info.url).CGI;
    this.version = info.version ? 101 : 100;
    this.httpVersion = info.version ? '1.1' : '1.0';
    this.rawHeaders = info.headers;
    this.headers = headersObject(info.headers);
    this.content = body.length ? body.toString('utf8') : null;
    this.bytes = body.length ? body.buffer.slice(body.byteOffset, body.byteOffset + body.length) : null;
    this.connection = socketInfo(exchange, this.headers);
    this.socket = { remoteAddress: this.connection.remoteAddress, remotePort: this.connection.remotePort,
      localAddress: this.connection.localAddress, localPort: this.connection.localPort, encrypted: info.secure };
    this.redirect = info.redirect;
    this._body = body;
  }

  /** Streams the (already complete) body to `data`/`end` listeners attached during the request handler. */
  _emitBody() {
    if (this._body.length) this.emit('data', this._body);
    this.emit('end');
  }
}

function byteLength(chunk) {
  return typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
}

class HttpResponse extends EventEmitter {
  constructor(exchange) {
    super();
    this._exchange = exchange;
    this._headers = new Map(); // lower-case name -> [name as given, value]
    this._headCalled = false;
    this.statusCode = 200;
    this.statusMessage = undefined;
    this.finished = false;
  }

  get headersSent() { return this._exchange.headSent; }
  get writableEnded() { return this.finished; }

  setHeader(name, value) {
    if (this.headersSent || this._headCalled) throw new Error(HEADERS_SENT);
    this._headers.set(String(name).toLowerCase(), [String(name), value]);
    return this;
  }

  getHeader(name) { return this._headers.get(String(name).toLowerCase())?.[1]; }
  hasHeader(name) { return this._headers.has(String(name).toLowerCase()); }
  getHeaderNames() { return [...this._headers.keys()]; }
  getHeaders() { return Object.fromEntries([...this._headers].map(([k, [, v]]) => [k, v])); }

  removeHeader(name) {
    if (this.headersSent) throw new Error(HEADERS_SENT);
    this._headers.delete(String(name).toLowerCase());
  }

  /** writeHead(status[, reason][, headers]); headers as an object or a flat [name, value, ...] array. */
  writeHead(status, reason, headers) {
    if (this._headCalled || this.headersSent) throw new Error(HEADERS_SENT);
    if (typeof reason !== 'string') [headers, reason] = [reason, undefined];
    const code = Number(status);
    if (!Number.isInteger(code) || code < 100 || code > 999) throw new RangeError(`Invalid status code: ${status}`);
    this.statusCode = code;
    if (reason !== undefined) this.statusMessage = reason;
    if (Array.isArray(headers)) {
      for (let i = 0; i + 1 < headers.length; i += 2) this._headers.set(String(headers[i]).toLowerCase(), [String(headers[i]), headers[i + 1]]);
    } else if (headers) {
      for (const [name, value] of Object.entries(headers)) this._headers.set(name.toLowerCase(), [name, value]);
    }
    this._headCalled = true;
    return this;
  }

  _sendHead(contentLength) {
    if (this.headersSent) return;
    const flat = [];
    for (const [name, value] of this._headers.values()) {
      for (const v of Array.isArray(value) ? value : [value]) flat.push(name, String(v));
    }
    this._exchange.writeHead(this.statusCode, this.statusMessage, flat, contentLength);
  }

  write(chunk, encoding, cb) {
    if (typeof encoding === 'function') cb = encoding;
    if (this.finished) throw new Error('write after end');
    this._sendHead(undefined);
    if (chunk !== undefined && chunk !== null) this._exchange.write(asPayload(chunk));
    if (cb) process.nextTick(cb);
    return true;
  }

  /** end([data][, cb]); a number before the headers are sent is the status (sack). */
  end(chunk, encoding, cb) {
    if (typeof chunk === 'function') [cb, chunk] = [chunk, undefined];
    if (typeof encoding === 'function') cb = encoding;
    if (this.finished) return this;
    if (typeof chunk === 'number' && !this.headersSent) {
      this.statusCode = chunk;
      chunk = undefined;
    }
    const data = chunk === undefined || chunk === null ? undefined : asPayload(chunk);
    this._sendHead(data === undefined ? 0 : byteLength(data));
    if (data !== undefined) this._exchange.write(data);
    this._exchange.end();
    this.finished = true;
    process.nextTick(() => {
      this.emit('finish');
      if (cb) cb();
    });
    return this;
  }
}

/** Builds the request/response pair for a native exchange, runs `handler(req, res)` with `self` as `this`. */
function handleRequest(exchange, handler, self) {
  const req = new HttpRequest(exchange, exchange.request());
  const res = new HttpResponse(exchange);
  try {
    handler.call(self, req, res);
  } catch (err) {
    if (!res.headersSent && !res.finished) {
      res.statusCode = 500;
      res.end('Internal Server Error');
    }
    throw err;
  } finally {
    process.nextTick(() => req._emitBody());
  }
}

module.exports = { handleRequest, HttpRequest, HttpResponse, splitTarget, headersObject, socketInfo };
