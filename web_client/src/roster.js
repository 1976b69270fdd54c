// Who is present in one scope (docs/presence.md): `conversation:<id>` for the messagerie's
// « en ligne », `doc:<id>` for the course editor's list. One /presence connection; joins and
// leaves are applied in version order, and the whole roster is asked again on a gap or a new
// epoch (a message lost between servers, Redis restarted). The roster comes from the server's
// presence store, shared by every server process, never from what this page happened to see.
import { io } from 'socket.io-client';

import { ackCall } from './ack.js';

/** `onChange(users)` gets a Map id → {id, name, role, since, devices} after every change. */
export function watchRoster(onChange) {
  let scope = null;
  let users = new Map();
  let epoch = null;
  let version = 0;
  const socket = io('/presence', { transports: ['websocket'], forceNew: true,
    reconnectionDelay: 500, reconnectionDelayMax: 4000 });

  async function subscribe() {
    const wanted = scope;
    if (!wanted) return;
    // offline (`lost`): the next connect subscribes again
    const ack = await ackCall(socket, 'subscribe', { scope: wanted }, { whenOffline: 'refuse' });
    if (!ack.ok || wanted !== scope) return;
    epoch = ack.epoch;
    version = ack.version;
    users = new Map(ack.users.map((u) => [u.id, u]));
    onChange(users);
  }

  socket.on('connect', subscribe);
  socket.on('presence', (change) => {
    if (!scope || change?.scope !== scope) return;
    if (change.epoch === epoch && change.version <= version) return; // already counted
    if (change.epoch !== epoch || change.version !== version + 1) { subscribe(); return; }
    version = change.version;
    if (change.type === 'join') users.set(change.user.id, change.user);
    else users.delete(change.user.id);
    onChange(users);
  });

  return {
    /** Follow another scope (the conversation on screen changed). */
    watch(next) {
      if (next === scope) return;
      if (scope && socket.connected) socket.emit('unsubscribe', { scope });
      scope = next;
      users = new Map();
      epoch = null;
      version = 0;
      onChange(users);
      if (socket.connected) subscribe();
    },
    close() {
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}

export const sinceText = (seconds) => new Date(seconds * 1000)
  .toLocaleTimeString('fr-FR', { hour: '2-digit', minute: '2-digit' });
