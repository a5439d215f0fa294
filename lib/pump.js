'use strict';
// The JavaScript end of this thread's event pump (src/binding/pump.rs). Every face registers its servers and
// connections here by slot; one `dispatch` call receives every event that was waiting, as a flat array
// [slot << KIND_BITS | kind, payload, ...], and hands each to its target's handler method.

const native = require('./addon.js').loadAddon();

// Must match KIND_BITS and the KIND_* constants in src/binding/pump.rs.
const KIND_BITS = 5;
const KIND_MASK = (1 << KIND_BITS) - 1;
const TEXT = 0;
const BINARY = 1;
const UPGRADE = 2;
const CLOSED = 3;
const DRAIN = 4;
const PING = 5;
const PONG = 6;
const SERVER_CLOSED = 7;
const REQUEST = 8;
const POSTED = 9;
const FAILURE = 10;
const TEXT_BYTES = 12;
const OUTPUT = 13;
const BRIDGE_END = 14;
const BRIDGE_RESUME = 15;
const BINARY_BYTES = 16;
const FRAME = 17;
const BACKPLANE = 18;

/** slot → the face object that receives that slot's events (a server or a connection). */
const targets = [];

/** The ArrayBuffer that small messages of the current batch share (see SHARED_MAX in pump.rs). */
let shared;

/** A Buffer for a message delivered as bytes: a view of the shared buffer, or its own ArrayBuffer. */
function nodeBuffer(payload) {
  if (typeof payload !== 'number') return Buffer.from(payload);
  const length = payload % 65536;
  // A batch of only empty messages has no shared buffer.
  if (length === 0) return Buffer.alloc(0);
  return Buffer.from(shared, (payload - length) / 65536, length);
}

function rethrow(err) {
  throw err;
}

function deliver(code, payload) {
  const slot = code >>> KIND_BITS;
  const target = targets[slot];
  if (target === undefined) return; // a face dropped the object early; its events have nowhere to go
  switch (code & KIND_MASK) {
    case TEXT:
    case BINARY:
      target._onMessage(payload);
      break;
    case TEXT_BYTES:
      target._onText(nodeBuffer(payload));
      break;
    case BINARY_BYTES:
      target._onBinary(nodeBuffer(payload));
      break;
    case FRAME:
      target._onFrame(payload);
      break;
    case OUTPUT:
      target._onOutput(payload);
      break;
    case BRIDGE_END:
      target._onBridgeEnd(payload === 1);
      break;
    case BRIDGE_RESUME:
      target._onBridgeResume();
      break;
    case UPGRADE:
      target._onUpgrade(payload);
      break;
    case CLOSED:
      targets[slot] = undefined;
      target._onClose(payload[0], payload[1]);
      break;
    case DRAIN:
      target._onDrain();
      break;
    case PING:
      target._onPing(payload);
      break;
    case PONG:
      target._onPong(payload);
      break;
    case REQUEST:
      target._onRequest(payload);
      break;
    case POSTED:
      target._onPosted(payload);
      break;
    case FAILURE:
      target._onFailure(payload);
      break;
    case BACKPLANE:
      target._onBackplane(payload);
      break;
    case SERVER_CLOSED:
      targets[slot] = undefined;
      target._onServerClose();
      break;
  }
}

// A handler that throws must not cost the rest of the batch its events: the error is rethrown on its own tick,
// where it becomes an ordinary uncaught exception.
function dispatch(events, sharedBuffer) {
  shared = sharedBuffer;
  const n = events.length;
  let i = 0;
  while (i < n) {
    try {
      for (; i < n; i += 2) deliver(events[i], events[i + 1]);
    } catch (err) {
      i += 2;
      process.nextTick(rethrow, err);
    }
  }
}

native.startPump(dispatch);

/** Routes the events of `slot` to `target` from now on. */
function register(slot, target) {
  targets[slot] = target;
}

/** Forgets the object of `slot` (its events now go elsewhere or end). */
function unregister(slot) {
  targets[slot] = undefined;
}

/** Event kinds, for faces that pass events back to the native side (a connection posted mid-batch). */
const KIND = Object.freeze({ TEXT, BINARY, TEXT_BYTES, BINARY_BYTES, CLOSED, DRAIN, PING, PONG });

module.exports = { native, register, unregister, KIND };
