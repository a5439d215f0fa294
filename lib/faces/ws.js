'use strict';
// The `ws` (v8) face: `require('ferrows/ws')` in place of `require('ws')` for servers. Thin JavaScript over the
// native core, shaped like ws's lib/websocket-server.js and lib/websocket.js: same classes, options, events,
// argument types, error messages and status codes.
const EventEmitter = require('events');
const http = require('http');
const { Duplex } = require('stream');
const { native, register } = require('../pump.js');
const { Handovers } = require('../takeover.js');
const { backplaneOptions, addConnectionTopics, addServerTopics, emitBackplane } = require('../topics.js');
const { limitOptions, addOperations } = require('../operations.js');

const READY_STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const [CONNECTING, OPEN, CLOSING, CLOSED] = [0, 1, 2, 3];
const EMPTY = Buffer.alloc(0);
const RUNNING = 0;
const SERVER_CLOSING = 1;
const SERVER_CLOSED = 2;
const kSocketTaken = Symbol('ferrows-socket-taken');


function toBuffer(data) {
  if (Buffer.isBuffer(data)) return data;
  if (data instanceof ArrayBuffer) return Buffer.from(data);
  if (ArrayBuffer.isView(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.from(String(data));
}

/** Binary message data in the connection's binaryType (`buf` may be a view of a shared buffer). */
function asBinaryType(buf, binaryType) {
  if (binaryType === 'arraybuffer') return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  return binaryType === 'fragments' ? [buf] : buf;
}

class WebSocket extends EventEmitter {
  /** Server-side connections only: ferrows/ws creates them; `new WebSocket(url)` needs the ws client. */
  constructor(address) {
    super();
    if (address !== null && address !== undefined) {
      throw new Error('ferrows/ws provides the server side of ws only; keep require("ws") for WebSocket clients');
    }
    this._native = null;
    this._readyState = CONNECTING;
    this._protocol = '';
    this._extensions = '';
    this._binaryType = 'nodebuffer';
    this._bufferedAfterClose = 0;
    this._paused = false;
    this._pendingBlobs = null;
    this._errorEmitted = false;
    // A message sent in parts (fin: false) is under way.
    this._fragmenting = false;
    // Pings and pongs are reported natively only once someone listens for them.
    this._controlEvents = false;
    this.on('newListener', (event) => {
      if ((event === 'ping' || event === 'pong') && !this._controlEvents) {
        this._controlEvents = true;
        if (this._native) this._native.setControlEvents(true);
      }
    });
  }

  get binaryType() { return this._binaryType; }
  set binaryType(type) {
    if (!['nodebuffer', 'arraybuffer', 'fragments'].includes(type)) return;
    this._binaryType = type;
  }

  get bufferedAmount() {
    if (!this._native) return 0;
    return this._native.bufferedAmount + this._bufferedAfterClose;
  }

  get extensions() { return this._extensions; }
  get isPaused() { return this._paused; }
  get protocol() { return this._protocol; }
  get readyState() { return this._readyState; }
  get url() { return undefined; } // as ws: only clients have one

  _attach(nativeConn, protocol, extensions) {
    this._native = nativeConn;
    if (this._controlEvents) nativeConn.setControlEvents(true);
    this._protocol = protocol || '';
    this._extensions = extensions ? extensions.split(';')[0].trim() : '';
    register(nativeConn.slot, this);
    this._readyState = OPEN;
  }

  _notOpen(what, cb) {
    if (this._readyState === CONNECTING) throw new Error('WebSocket is not open: readyState 0 (CONNECTING)');
    const err = new Error(`WebSocket is not open: readyState ${this._readyState} (${READY_STATES[this._readyState]})`);
    if (what) this._bufferedAfterClose += what.length ?? what.byteLength ?? 0;
    if (cb) process.nextTick(cb, err);
  }

  send(data, options, cb) {
    if (typeof options === 'function') [cb, options] = [options, {}];
    if (typeof data === 'number') data = data.toString();
    if (this._readyState !== OPEN) return this._notOpen(typeof data === 'string' ? Buffer.from(data) : data, cb);
    const binary = options && options.binary !== undefined ? Boolean(options.binary) : typeof data !== 'string';
    if (typeof Blob !== 'undefined' && data instanceof Blob) return this._sendBlob(data, binary, options, cb);
    if (this._pendingBlobs) return this._pendingBlobs.push([data, options, cb]);
    this._sendNow(data, binary, options);
    if (cb) process.nextTick(cb, null);
    return undefined;
  }

  /**
   * As ws's sender: `fin: false` starts (or continues) a message sent in parts, every send after it is its next
   * frame until one with `fin` true ends it; `compress: false` sends this message uncompressed.
   */
  _sendNow(data, binary, options) {
    const fin = !options || options.fin === undefined || Boolean(options.fin);
    const compress = !options || options.compress === undefined || Boolean(options.compress);
    if (fin && compress && !this._fragmenting) return this._native.sendAs(data, binary);
    const continuation = this._fragmenting;
    this._fragmenting = !fin;
    return this._native.sendAs(data, binary, { fin, continuation, compress });
  }

  /** Blobs are read asynchronously; sends made meanwhile wait behind them so that order holds. */
  _sendBlob(blob, binary, options, cb) {
    const queue = this._pendingBlobs || (this._pendingBlobs = []);
    const ready = blob.arrayBuffer();
    queue.push(null);
    ready.then((ab) => {
      queue.shift();
      if (this._readyState === OPEN) this._sendNow(ab, binary, options);
      if (cb) cb(this._readyState === OPEN ? null : new Error('WebSocket is not open'));
      while (queue.length && queue[0] !== null) {
        const [d, o, c] = queue.shift();
        this._pendingBlobs = null;
        this.send(d, o, c);
        this._pendingBlobs = queue.length ? queue : null;
      }
      if (!queue.length) this._pendingBlobs = null;
    }, (err) => {
      // As ws: every waiting send's callback gets the error, the connection ends without a close frame (1006)
      // and 'error' is emitted once.
      process.nextTick(() => {
        if (cb) cb(err);
        for (const entry of queue.splice(0)) if (entry && entry[2]) entry[2](err);
        this._pendingBlobs = null;
        if (this._readyState === CLOSED) return;
        this._readyState = CLOSING;
        this._native.terminate();
        if (!this._errorEmitted) {
          this._errorEmitted = true;
          this.emit('error', err);
        }
      });
    });
  }

  _control(kind, data, cb) {
    if (typeof data === 'function') [cb, data] = [data, undefined];
    if (typeof data === 'number') data = data.toString();
    if (this._readyState !== OPEN) return this._notOpen(data === undefined ? EMPTY : toBuffer(data), cb);
    const payload = data === undefined ? undefined : toBuffer(data);
    if (payload && payload.length > native.MAX_CONTROL_PAYLOAD) {
      throw new RangeError(`The data size must not be greater than ${native.MAX_CONTROL_PAYLOAD} bytes`);
    }
    this._native[kind](payload);
    if (cb) process.nextTick(cb, null);
    return undefined;
  }

  ping(data, mask, cb) {
    if (typeof mask === 'function') cb = mask;
    return this._control('ping', data, cb);
  }

  pong(data, mask, cb) {
    if (typeof mask === 'function') cb = mask;
    return this._control('pong', data, cb);
  }

  close(code, data) {
    if (this._readyState === CLOSED || this._readyState === CLOSING) return;
    this._readyState = CLOSING; // before the checks, as in ws: a close() that throws still leaves it closing
    if (code !== undefined && (typeof code !== 'number' || !native.isValidCloseCode(code))) {
      throw new TypeError('First argument must be a valid error code number');
    }
    const reason = data === undefined ? undefined : String(data);
    if (reason !== undefined && Buffer.byteLength(reason) > native.MAX_CLOSE_REASON) {
      throw new RangeError(`The message must not be greater than ${native.MAX_CLOSE_REASON} bytes`);
    }
    this._native.close(code, reason);
  }

  terminate() {
    if (this._readyState === CLOSED || !this._native) return;
    this._readyState = CLOSING;
    this._native.terminate();
  }

  pause() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._paused = true;
    this._native.setPaused(true);
  }

  resume() {
    if (this._readyState === CONNECTING || this._readyState === CLOSED) return;
    this._paused = false;
    this._native.setPaused(false);
  }

  _onBinary(buf) { this.emit('message', asBinaryType(buf, this._binaryType), true); }
  _onText(buf) { this.emit('message', buf, false); }
  _onPing(ab) { this.emit('ping', Buffer.from(ab)); }
  _onPong(ab) { this.emit('pong', Buffer.from(ab)); }
  _onDrain() {}

  _onClose(code, reason) {
    this._readyState = CLOSED;
    this.emit('close', code, Buffer.from(reason || ''));
  }
}

for (const [i, name] of READY_STATES.entries()) {
  Object.defineProperty(WebSocket, name, { enumerable: true, value: i });
  Object.defineProperty(WebSocket.prototype, name, { enumerable: true, value: i });
}

// The EventTarget-style API of ws (event.data, event.code, ...).
const eventFor = {
  message: (target, data, isBinary) => ({ type: 'message', target, data: isBinary ? data : data.toString() }),
  close: (target, code, reason) => ({ type: 'close', target, code, reason: reason.toString(), wasClean: code !== 1006 }),
  error: (target, error) => ({ type: 'error', target, error, message: error && error.message }),
  open: (target) => ({ type: 'open', target }),
};
const kListener = Symbol('ferrows-ws-listener');
Object.assign(WebSocket.prototype, {
  addEventListener(type, handler, options = {}) {
    if (!eventFor[type] || typeof handler !== 'function') return;
    for (const l of this.listeners(type)) if (l[kListener] === handler && !l._ferrowsAttribute) return;
    const wrapper = (...args) => (typeof handler === 'object' ? handler.handleEvent : handler).call(this, eventFor[type](this, ...args));
    wrapper[kListener] = handler;
    if (options.once) this.once(type, wrapper);
    else this.on(type, wrapper);
  },
  removeEventListener(type, handler) {
    for (const l of this.listeners(type)) {
      if (l[kListener] === handler && !l._ferrowsAttribute) {
        this.removeListener(type, l);
        break;
      }
    }
  },
});
for (const type of ['open', 'error', 'close', 'message']) {
  Object.defineProperty(WebSocket.prototype, `on${type}`, {
    enumerable: true,
    get() {
      for (const l of this.listeners(type)) if (l._ferrowsAttribute) return l[kListener];
      return null;
    },
    set(handler) {
      for (const l of this.listeners(type)) if (l._ferrowsAttribute) this.removeListener(type, l);
      if (typeof handler !== 'function') return;
      const wrapper = (...args) => handler.call(this, eventFor[type](this, ...args));
      wrapper[kListener] = handler;
      wrapper._ferrowsAttribute = true;
      this.on(type, wrapper);
    },
  });
}

/** Answers an upgrade request that is not taken over with an HTTP error (headers alternating names and values). */
function abortHandshake(socket, code, message, headers) {
  socket.once('finish', socket.destroy);
  socket.end(native.errorResponse(code, message, headers));
}

/** Names and values alternating, as the native side takes headers (arrays, as set-cookie, give one pair each). */
function flatHeaders(headers) {
  return Object.entries(headers || {}).flatMap(([name, value]) =>
    (Array.isArray(value) ? value.flatMap((v) => [name, String(v)]) : [name, String(value)]));
}

function socketOnError() {
  this.destroy();
}

class WebSocketServer extends EventEmitter {
  constructor(options, callback) {
    super();
    options = {
      allowSynchronousEvents: true, autoPong: true, maxPayload: 100 * 1024 * 1024, skipUTF8Validation: false,
      perMessageDeflate: false, handleProtocols: null, clientTracking: true, verifyClient: null, noServer: false,
      backlog: null, server: null, host: null, path: null, port: null, WebSocket, closeTimeout: 30000, ...options,
    };
    if ((options.port == null && !options.server && !options.noServer) ||
      (options.port != null && (options.server || options.noServer)) || (options.server && options.noServer)) {
      throw new TypeError('One and only one of the "port", "server", or "noServer" options must be specified');
    }
    if (options.perMessageDeflate === true) options.perMessageDeflate = {};
    this.options = options;
    this._state = RUNNING;
    if (options.clientTracking) {
      this.clients = new Set();
      this._shouldEmitClose = false;
    }
    // As in ws, connections arrive through Node's HTTP server (its own on the `port` path): the request users
    // and middleware see is a real http.IncomingMessage. Each accepted upgrade's socket is then taken over by a
    // detached native server, which runs the connection from there.
    this._native = native.NativeServer.detached(this._nativeOptions());
    register(this._native.slot, this);
    this._handovers = new Handovers(this._native);
    if (options.port != null) {
      this._server = http.createServer((req, res) => {
        const body = http.STATUS_CODES[426];
        res.writeHead(426, { 'Content-Length': body.length, 'Content-Type': 'text/plain' });
        res.end(body);
      });
      this._server.listen(options.port, options.host, options.backlog, callback);
    } else if (options.server) {
      this._server = options.server;
    }
    if (this._server) {
      const map = {
        listening: this.emit.bind(this, 'listening'),
        error: this.emit.bind(this, 'error'),
        upgrade: (req, socket, head) => this.handleUpgrade(req, socket, head, this.emit.bind(this, 'connection')),
      };
      const server = this._server;
      for (const [event, fn] of Object.entries(map)) server.on(event, fn);
      this._removeListeners = () => {
        for (const [event, fn] of Object.entries(map)) server.removeListener(event, fn);
      };
    }
  }

  _nativeOptions() {
    const o = this.options;
    const pmd = o.perMessageDeflate;
    const zlib = (pmd && pmd.zlibDeflateOptions) || {};
    return {
      address: '::', port: 0, maxPayload: o.maxPayload, badVersionStatus: 400, autoPong: o.autoPong,
      closeTimeout: o.closeTimeout, backplane: backplaneOptions(o.backplane), ...limitOptions(o),
      maxBackpressure: o.maxBackpressure, closeOnBackpressureLimit: o.closeOnBackpressureLimit,
      deflate: pmd ? {
        compress: true, serverNoContextTakeover: Boolean(pmd.serverNoContextTakeover), clientNoContextTakeover: Boolean(pmd.clientNoContextTakeover),
        serverMaxWindowBits: typeof pmd.serverMaxWindowBits === 'number' ? pmd.serverMaxWindowBits : undefined,
        clientMaxWindowBits: typeof pmd.clientMaxWindowBits === 'number' ? pmd.clientMaxWindowBits : undefined,
        threshold: pmd.threshold ?? 1024, level: zlib.level === undefined || zlib.level < 0 ? undefined : zlib.level,
      } : undefined,
    };
  }

  address() {
    if (this.options.noServer) throw new Error('The server is operating in "noServer" mode');
    if (!this._server) return null;
    return this._server.address();
  }

  close(cb) {
    if (this._state === SERVER_CLOSED) {
      if (cb) this.once('close', () => cb(new Error('The server is not running')));
      process.nextTick(() => this.emit('close'));
      return;
    }
    if (cb) this.once('close', cb);
    if (this._state === SERVER_CLOSING) return;
    this._state = SERVER_CLOSING;
    this._native.stopListening();
    const internal = this.options.port != null ? this._server : null;
    if (this._removeListeners) {
      this._removeListeners();
      this._removeListeners = this._server = null;
    }
    // Connections are left open, as ws does; 'close' follows once they are gone (or at once without tracking),
    // and, when the HTTP server is ours, once it closed too (in ws it waits for the upgraded sockets).
    const closeWhenEmpty = () => {
      if (!this.clients || !this.clients.size) this._emitClose();
      else this._shouldEmitClose = true;
    };
    if (internal) internal.close(closeWhenEmpty);
    else closeWhenEmpty();
  }

  _emitClose() {
    process.nextTick(() => {
      if (this._state === SERVER_CLOSED) return;
      this._state = SERVER_CLOSED;
      this.emit('close');
    });
  }

  shouldHandle(req) {
    if (this.options.path) {
      const index = req.url.indexOf('?');
      const pathname = index !== -1 ? req.url.slice(0, index) : req.url;
      if (pathname !== this.options.path) return false;
    }
    return true;
  }

  /**
   * An upgrade request Node's HTTP server read: checked as ws checks it (the rules are the native ones), given to
   * `verifyClient`, then its socket is taken over natively and the upgrade completes in `_onUpgrade`.
   */
  handleUpgrade(req, socket, head, cb) {
    socket.on('error', socketOnError);
    const problem = native.checkUpgrade(req.method, req.httpVersion, flatHeaders(req.headers), 400);
    if (problem) return this._refuse(req, socket, problem.status, problem.message, problem.headers);
    if (!this.shouldHandle(req)) return abortHandshake(socket, 400);
    const offers = req.headers['sec-websocket-extensions'];
    if (this.options.perMessageDeflate && offers !== undefined && !native.checkDeflateOffers(offers)) {
      return this._refuse(req, socket, 400, 'Invalid or unacceptable Sec-WebSocket-Extensions header');
    }
    const { verifyClient } = this.options;
    if (!verifyClient) return this._takeOver(req, socket, head, cb);
    const version = Number(req.headers['sec-websocket-version']);
    const info = {
      origin: req.headers[version === 8 ? 'sec-websocket-origin' : 'origin'],
      secure: Boolean(req.socket.authorized || req.socket.encrypted),
      req,
    };
    if (verifyClient.length === 2) {
      verifyClient(info, (verified, code, message, headers) => {
        if (!verified) return abortHandshake(socket, code || 401, message, flatHeaders(headers));
        return this._takeOver(req, socket, head, cb);
      });
      return undefined;
    }
    if (!verifyClient(info)) return abortHandshake(socket, 401);
    return this._takeOver(req, socket, head, cb);
  }

  /** A request ws refuses: 'wsClientError' listeners answer it themselves, else the HTTP error goes out. */
  _refuse(req, socket, status, message, headers) {
    if (this.listenerCount('wsClientError')) {
      this.emit('wsClientError', new Error(message), socket, req);
    } else {
      abortHandshake(socket, status, message, headers);
    }
  }

  _takeOver(req, socket, head, cb) {
    // First: a socket already taken over is destroyed on Node's side, so it would pass for one whose client left.
    if (socket[kSocketTaken]) {
      throw new Error('server.handleUpgrade() was called more than once with the same socket, possibly due to a misconfiguration');
    }
    // The client went away while verifyClient decided (as ws checks before it answers).
    if (!socket.readable || !socket.writable) return socket.destroy();
    if (this._state > RUNNING) return abortHandshake(socket, 503);
    socket[kSocketTaken] = true;
    socket.removeListener('error', socketOnError);
    try {
      this._handovers.hand(req, socket, head, { req, cb });
    } catch (err) {
      abortHandshake(socket, 500);
      this.emit('error', err);
    }
    return undefined;
  }

  _onUpgrade(nativeConn) {
    const hs = nativeConn.handshake();
    const pending = this._handovers.claim(hs);
    if (!pending) return nativeConn.reject(400);
    const { req, cb } = pending;
    if (this._state > RUNNING) return nativeConn.reject(503, http.STATUS_CODES[503]);
    let protocol;
    if (hs.protocols.length) {
      protocol = this.options.handleProtocols ? this.options.handleProtocols(new Set(hs.protocols), req) : hs.protocols[0];
    }
    const headers = native.answerLines(req.headers['sec-websocket-key'], protocol || undefined, hs.extensions || undefined);
    const standard = headers.length;
    this.emit('headers', headers, req);
    const ws = new this.options.WebSocket(null, undefined, this.options);
    nativeConn.setNodeBuffers(true); // before the accept: the client may send at once
    if (!nativeConn.accept(protocol || undefined, headers.slice(standard))) return undefined;
    ws._attach(nativeConn, protocol, hs.extensions);
    if (this.clients) {
      this.clients.add(ws);
      ws.on('close', () => {
        this.clients.delete(ws);
        if (this._shouldEmitClose && !this.clients.size) this._emitClose();
      });
    }
    cb(ws, req);
    return undefined;
  }

  /** drain() stops taking upgrades first: no more from Node's HTTP server, whose listener closes if it is ours. */
  _beforeDrain() {
    const internal = this.options.port != null ? this._server : null;
    if (this._removeListeners) this._removeListeners();
    this._removeListeners = null;
    if (internal) internal.close();
  }

  _onServerClose() {}
}

/** A Duplex over a WebSocket, as ws's createWebSocketStream. */
function createWebSocketStream(ws, options) {
  let terminateOnDestroy = true;
  const duplex = new Duplex({ ...options, autoDestroy: false, emitClose: false, objectMode: false, writableObjectMode: false });
  ws.on('message', (msg, isBinary) => {
    const data = !isBinary && duplex._readableState.objectMode ? msg.toString() : msg;
    if (!duplex.push(data)) ws.pause();
  });
  ws.once('error', (err) => {
    if (duplex.destroyed) return;
    terminateOnDestroy = false;
    duplex.destroy(err);
  });
  ws.once('close', () => {
    if (duplex.destroyed) return;
    duplex.push(null);
  });
  duplex._destroy = function (err, callback) {
    if (ws.readyState === CLOSED) return callback(err);
    let called = false;
    ws.once('error', (e) => { called = true; callback(e); });
    ws.once('close', () => { if (!called) callback(err); });
    if (terminateOnDestroy) ws.terminate();
    return undefined;
  };
  duplex._final = function (callback) {
    if (ws.readyState === CLOSED) return callback();
    ws.once('close', () => callback());
    ws.close();
    return undefined;
  };
  duplex._read = function () { if (ws.isPaused) ws.resume(); };
  duplex._write = function (chunk, encoding, callback) { ws.send(chunk, callback); };
  duplex.on('end', () => { if (!duplex.destroyed && duplex._writableState.finished) duplex.destroy(); });
  return duplex;
}

// Additions to ws's API: topics (ws.subscribe/unsubscribe/topics, wss.publish), wss.broadcast, and the
// cross-process backplane (the `backplane` option and 'backplane' event).
addConnectionTopics(WebSocket.prototype);
addServerTopics(WebSocketServer.prototype, emitBackplane);
addOperations(WebSocketServer.prototype);

/**
 * For libraries that `require('ws')` themselves (@fastify/websocket, express-ws): from this call on, every copy
 * of ws loaded with require() in this process has ferrows's server class as `Server` and `WebSocketServer`; its
 * client stays ws's. Call it before such a library creates its server.
 */
function replaceWsServer() {
  const patch = (ws) => {
    if (typeof ws === 'function' && typeof ws.Server === 'function' && ws !== WebSocket) {
      ws.Server = WebSocketServer;
      ws.WebSocketServer = WebSocketServer;
    }
    return ws;
  };
  for (const [file, loaded] of Object.entries(require.cache)) {
    if (/[\\/]node_modules[\\/]ws[\\/]index\.js$/.test(file)) patch(loaded.exports);
  }
  if (replaceWsServer.installed) return;
  replaceWsServer.installed = true;
  const Module = require('module');
  const load = Module._load;
  Module._load = function loadWithFerrowsServer(request, ...rest) {
    const exports = load.call(this, request, ...rest);
    return request === 'ws' ? patch(exports) : exports;
  };
}

WebSocket.Server = WebSocketServer;
WebSocket.WebSocketServer = WebSocketServer;
WebSocket.WebSocket = WebSocket;
WebSocket.createWebSocketStream = createWebSocketStream;
WebSocket.replaceWsServer = replaceWsServer;

module.exports = WebSocket;
