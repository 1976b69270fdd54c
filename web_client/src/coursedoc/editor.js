// The co-editing editor: Tiptap (ProseMirror) bound to a Yjs document through the stock
// y-websocket provider on /yjs/<id>. The XmlFragment "prosemirror" is the document's schema
// (see docs/coursedocs.md); the session cookie authenticates the websocket.
import { Editor } from '@tiptap/core';
import { TextSelection } from '@tiptap/pm/state';
import Collaboration from '@tiptap/extension-collaboration';
import CollaborationCaret from '@tiptap/extension-collaboration-caret';
import Image from '@tiptap/extension-image';
import StarterKit from '@tiptap/starter-kit';
import * as decoding from 'lib0/decoding';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { imageFiles } from './images.js';

const AUTH = 2; // y-protocols' auth message: 0 permission denied, 1 (ours) access changed

const COLORS = ['#b91c1c', '#1d4ed8', '#047857', '#7c3aed', '#c2410c', '#0e7490', '#be185d', '#4d7c0f'];

function pastedImages(view, transfer, onImages) {
  const files = imageFiles(transfer);
  if (!files.length || !view.editable) return false;
  onImages?.(files);
  return true;
}

export function colorOf(userId) {
  return COLORS[Math.abs(Number(userId) || 0) % COLORS.length];
}

/** Open document `docId` in `element`; returns { editor, provider, ydoc, destroy }.
 * onAccess('edit' | 'read'): the owner changed this class's access, live.
 * onClosed({ code, reason }): the server ended it for good (4403 unshared, 4404 deleted);
 * y-websocket stops reconnecting on 4400–4499 codes. */
export function openEditor(element, {
  docId, user, editable, onStatus, onPeople, onDenied, onAccess, onClosed, onImages, onRefused,
}) {
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
    editorProps: {
      attributes: { class: 'doc-content', 'aria-label': 'Contenu du cours', role: 'textbox', 'aria-multiline': 'true' },
      // Pasted or dropped image files are uploaded into the course (coursedoc/images.js).
      handlePaste: (view, event) => pastedImages(view, event.clipboardData, onImages),
      handleDrop: (view, event) => {
        const files = imageFiles(event.dataTransfer);
        if (!files.length || !view.editable) return false;
        const at = view.posAtCoords({ left: event.clientX, top: event.clientY });
        if (at) view.dispatch(view.state.tr.setSelection(TextSelection.create(view.state.doc, at.pos)));
        event.preventDefault();
        onImages?.(files);
        return true;
      },
    },
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
  // y-websocket only logs a permission-denied auth message: read it (and our « access
  // changed » subtype, which stock clients ignore) ourselves.
  provider.messageHandlers[AUTH] = (_encoder, decoder) => {
    const kind = decoding.readVarUint(decoder);
    const text = decoding.readVarString(decoder);
    if (kind === 0) onDenied?.(text);
    else if (kind === 1) onAccess?.(text);
  };
  provider.on('closed', (event) => onClosed?.(event));
  // A refusal of the server (malformed, over a limit, too many requests) closes the socket
  // with its code and a French reason: say it, rather than a silent « Reconnexion… ».
  provider.on('connection-close', (event) => {
    if (event && [1007, 1008, 1009, 1013].includes(event.code)) onRefused?.(event.code, event.reason);
  });

  return {
    editor, provider, ydoc,
    destroy() {
      editor.destroy();
      provider.destroy();
      ydoc.destroy();
    },
  };
}
