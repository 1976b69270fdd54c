// A stock Yjs client for the compatibility tests: yjs + y-websocket's WebsocketProvider + ws,
// from web_client/node_modules, unchanged. It writes paragraphs (with bold and a link) into
// the "prosemirror" XmlFragment, publishes its awareness, waits until it sees every marker it
// was told to expect, then prints one JSON line: the fragment, awareness names, refusals.
//
// usage: node yjs_client.cjs <serverUrl ws://host/yjs> <docId> <token> <name> <json config>
//   config: {"write": ["…"], "expect": ["…"], "timeout_ms": 15000}
'use strict';
const {
  Y, WebsocketProvider, WebSocket, appendParagraph,
  args: { serverUrl, docId, token, name, config },
} = require('./yjs_node.cjs');
const denied = [];
const warn = console.warn;
console.warn = (...args) => {  // y-websocket reports permission-denied auth messages here
  const text = args.join(' ');
  if (text.includes('Permission denied')) denied.push(text);
  else warn(...args);
};

const doc = new Y.Doc();
const fragment = doc.getXmlFragment('prosemirror');
const provider = new WebsocketProvider(serverUrl, String(docId), doc, {
  WebSocketPolyfill: WebSocket, params: { token }, disableBc: true,
});
provider.awareness.setLocalStateField('user', { name, color: '#1f77b4' });
const names = new Set();
provider.awareness.on('change', () => {
  for (const state of provider.awareness.getStates().values()) {
    if (state.user && state.user.name) names.add(state.user.name);
  }
});

function write(text) {
  appendParagraph(Y, doc, fragment, text, [
    [' (gras)', { bold: {} }],
    [' lien', { link: { href: 'https://www.education.gouv.fr/' } }],
  ]);
}

function done(code) {
  const out = { text: fragment.toString(), names: [...names].sort(), denied,
                synced: provider.synced };
  process.stdout.write(JSON.stringify(out) + '\n');
  provider.destroy();
  setTimeout(() => process.exit(code), 50);
}

provider.on('sync', (synced) => {
  if (!synced || provider._wrote) return;
  provider._wrote = true;
  for (const text of config.write || []) write(text);
  const expect = config.expect || [];
  const check = setInterval(() => {
    const text = fragment.toString();
    const deniedEnough = !config.expect_denied || denied.length > 0;
    if (expect.every((m) => text.includes(m)) && deniedEnough) {
      clearInterval(check);
      setTimeout(() => done(0), config.linger_ms || 200);
    }
  }, 20);
});
setTimeout(() => done(2), config.timeout_ms || 15000);
