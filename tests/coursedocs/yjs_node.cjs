// What the Node Yjs test clients share: yjs, y-websocket's WebsocketProvider and ws from
// web_client/node_modules (unchanged), and their command line:
//   node <client>.cjs <serverUrl ws://host/yjs> <docId> <token> <name> <json config>
'use strict';
const path = require('node:path');
const { createRequire } = require('node:module');

const req = createRequire(path.join(__dirname, '..', '..', 'web_client', 'package.json'));
const [serverUrl, docId, token, name, rawConfig] = process.argv.slice(2);

/** Append a paragraph `text` to the ProseMirror fragment, then each [text, marks] of `runs`. */
function appendParagraph(Y, doc, fragment, text, runs) {
  doc.transact(() => {
    const p = new Y.XmlElement('paragraph');
    const t = new Y.XmlText();
    p.insert(0, [t]);
    fragment.insert(fragment.length, [p]);
    t.insert(0, text);
    for (const [more, marks] of runs) t.insert(t.length, more, marks);
  });
}

module.exports = {
  appendParagraph,
  Y: req('yjs'),
  WebsocketProvider: req('y-websocket').WebsocketProvider,
  WebSocket: req('ws'),
  args: { serverUrl, docId, token, name, config: JSON.parse(rawConfig || '{}') },
};
