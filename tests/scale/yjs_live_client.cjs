// A stock Yjs client that lives through a server crash: yjs + y-websocket's WebsocketProvider +
// ws, from web_client/node_modules, unchanged (the provider reconnects by itself). Driven over
// stdin, one JSON command a line; it answers on stdout, one JSON event a line.
//
// usage: node yjs_live_client.cjs <serverUrl ws://host/yjs> <docId> <token> <name> <json config>
//   config: {"on_disconnect": ["…"]}: paragraphs written the moment the first connection drops,
//   before the provider tries again, so they are made offline for sure (Yjs keeps them and the
//   next sync sends them).
// commands: {"write": "…"}  {"quit": true}
// events:   {"event": "connected", "port": <local port>}  {"event": "synced"}
//           {"event": "disconnected"}  {"event": "wrote", "text": "…", "online": bool}
//           {"event": "text", "text": "<the fragment>"} after changes (at most every 10 ms,
//           and always after the last one)
'use strict';
const readline = require('node:readline');
const {
  Y, WebsocketProvider, WebSocket, appendParagraph,
  args: { serverUrl, docId, token, name, config },
} = require('../coursedocs/yjs_node.cjs');
const say = (event) => process.stdout.write(JSON.stringify(event) + '\n');

const doc = new Y.Doc();
const fragment = doc.getXmlFragment('prosemirror');
const provider = new WebsocketProvider(serverUrl, String(docId), doc, {
  WebSocketPolyfill: WebSocket, params: { token }, disableBc: true,
});
provider.awareness.setLocalStateField('user', { name, color: '#2a9d8f' });

function write(text) {
  appendParagraph(Y, doc, fragment, text, [[' (gras)', { bold: {} }]]);
  say({ event: 'wrote', text, online: provider.wsconnected });
}

let offline = config.on_disconnect || [];
provider.on('status', ({ status }) => {
  if (status === 'connected') {
    const socket = provider.ws && provider.ws._socket;
    say({ event: 'connected', port: socket ? socket.localPort : null });
  } else if (status === 'disconnected') {
    say({ event: 'disconnected' });
    for (const text of offline) write(text);  // provider.ws is null: nothing is sent now
    offline = [];
  }
});
provider.on('sync', (synced) => { if (synced) say({ event: 'synced' }); });

let pending = null;
doc.on('update', () => {
  if (pending === null) {
    pending = setTimeout(() => {
      pending = null;
      say({ event: 'text', text: fragment.toString() });
    }, 10);
  }
});

function quit() {
  provider.destroy();
  setTimeout(() => process.exit(0), 20);
}

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line);
  if (command.write !== undefined) write(command.write);
  if (command.quit) quit();
}).on('close', quit);
