'use strict';
// One native connection as the faces use it: a plain object holding the connection's handle number and its event
// slot, whose methods call the module functions of src/binding/connection.rs. The handle keeps the native
// connection until this object is collected; then the registry below releases it. A wrapped native class would
// cost every connection about 350 bytes more (a napi reference, napi-rs's wrapper, an External and a type tag).

const native = require('./addon.js').loadAddon();

const released = new FinalizationRegistry((id) => native.connectionRelease(id));

class NativeConnection {
  /** `handle`: [handle number, event slot], as an upgrade or a posted connection arrives (src/binding/events.rs). */
  constructor(handle) {
    this._id = handle[0];
    /** The slot this connection's events carry. */
    this.slot = handle[1];
    released.register(this, this._id);
  }

  handshake() { return native.connectionHandshake(this._id); }
  get firstProtocol() { return native.connectionFirstProtocol(this._id); }
  post(name, queue) { return native.connectionPost(this._id, name, queue); }
  get remote() { return native.connectionRemote(this._id); }
  get local() { return native.connectionLocal(this._id); }
  accept(protocol, headers) { return native.connectionAccept(this._id, protocol, headers); }
  reject(status, body, headers) { return native.connectionReject(this._id, status, body, headers); }
  send(data) { return native.connectionSend(this._id, data); }
  sendAs(data, binary, options) { return native.connectionSendAs(this._id, data, binary, options); }
  ping(data) { return native.connectionPing(this._id, data); }
  pong(data) { return native.connectionPong(this._id, data); }
  close(code, reason) { return native.connectionClose(this._id, code, reason); }
  terminate() { return native.connectionTerminate(this._id); }
  setPaused(paused) { return native.connectionSetPaused(this._id, paused); }
  setFrames(on) { return native.connectionSetFrames(this._id, on); }
  setControlEvents(on) { return native.connectionSetControlEvents(this._id, on); }
  setNodeBuffers(on) { return native.connectionSetNodeBuffers(this.slot, on); }
  setNoDelay(on) { return native.connectionSetNoDelay(this._id, on); }
  setAggregate(on) { return native.connectionSetAggregate(this._id, on); }
  subscribe(topic) { return native.connectionSubscribe(this._id, topic); }
  unsubscribe(topic) { return native.connectionUnsubscribe(this._id, topic); }
  get topics() { return native.connectionTopics(this._id); }
  get bufferedAmount() { return native.connectionBufferedAmount(this._id); }
  get readyState() { return native.connectionReadyState(this._id); }
}

module.exports = { NativeConnection };
