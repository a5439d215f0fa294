'use strict';
// `require('ferrows')`: the sack.vfs-style face (lib/faces/sack.js). The other faces are `ferrows/ws`,
// `ferrows/websocket` and `ferrows/node-websocket-server`.
module.exports = require('./lib/faces/sack.js');
