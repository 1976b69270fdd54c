// The co-editing editor: Tiptap (ProseMirror) bound to a Yjs document through the stock
// y-websocket provider on /yjs/<id>. The XmlFragment "prosemirror" is the document's schema
// (see docs/coursedocs.md); the session cookie authenticates the websocket.
import { Editor } from '@tiptap/core';
import Collaboration from '@tiptap/extension-collaboration';
import CollaborationCaret from '@tiptap/extension-collaboration-caret';
import Image from '@tiptap/extension-image';
import StarterKit from '@tiptap/starter-kit';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';

const COLORS = ['#b91c1c', '#1d4ed8', '#047857', '#7c3aed', '#c2410c', '#0e7490', '#be185d', '#4d7c0f'];

export function colorOf(userId) {
  return COLORS[Math.abs(Number(userId) || 0) % COLORS.length];
}

/** Open document `docId` in `element`; returns { editor, provider, ydoc, destroy }. */
export function openEditor(element, { docId, user, editable, onStatus, onPeople, onDenied }) {
  const ydoc = new Y.Doc();
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const provider = new WebsocketProvider(`${scheme}//${location.host}/yjs`, String(docId), ydoc,
    { disableBc: true });
  const me = { name: user.name, color: colorOf(user.id) };

  const editor = new Editor({
    element,
    editable,
    extensions: [
      StarterKit.configure({ undoRedo: false, link: { openOnClick: false, autolink: true } }),
      Image.configure({ inline: false }),
      Collaboration.configure({ document: ydoc, field: 'prosemirror' }),
      CollaborationCaret.configure({ provider, user: me }),
    ],
    editorProps: { attributes: { class: 'doc-content', 'aria-label': 'Contenu du cours', role: 'textbox', 'aria-multiline': 'true' } },
  });

  provider.on('status', ({ status }) => onStatus?.(status));
  provider.on('sync', (synced) => { if (synced) onStatus?.('synced'); });
  const people = () => {
    const seen = [];
    for (const [clientId, state] of provider.awareness.getStates()) {
      if (state.user?.name) seen.push({ clientId, ...state.user, me: clientId === ydoc.clientID });
    }
    onPeople?.(seen);
  };
  provider.awareness.on('change', people);
  // y-websocket reports a permission-denied auth message as a console warning only.
  const warn = console.warn;
  console.warn = (...args) => {
    if (String(args[0]).includes('Permission denied')) onDenied?.(args.join(' '));
    else warn(...args);
  };

  return {
    editor, provider, ydoc,
    destroy() {
      console.warn = warn;
      editor.destroy();
      provider.destroy();
      ydoc.destroy();
    },
  };
}
