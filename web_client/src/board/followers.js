// « Qui suit le tableau » : the teacher's live list of who follows this board
// (docs/presence.md). It subscribes to the board's presence scope on /presence, applies joins
// and leaves in version order, and asks for the whole roster again on a gap or a new epoch
// (a message lost between servers, Redis restarted). The roster comes from the server's
// presence store, never from who this page happens to have seen.
import { io } from 'socket.io-client';
import { h, replace } from '../dom.js';

const ACK_TIMEOUT_MS = 10_000;
const hhmm = (seconds) => new Date(seconds * 1000)
  .toLocaleTimeString('fr-FR', { hour: '2-digit', minute: '2-digit' });

/** A « Élèves connectés » menu for the teacher's bar; `close()` ends its connection. */
export function followersPanel(boardId, { me } = {}) {
  const scope = `board:${boardId}`;
  const count = h('span', { class: 'followers-count' }, '0');
  const list = h('ul', { class: 'followers-list', 'aria-live': 'polite' });
  const el = h('details', { class: 'menu followers', dataset: { scope } },
    h('summary', { class: 'btn tool', title: 'Qui suit le tableau en ce moment' },
      h('span', { class: 'label-wide' }, 'Élèves connectés : '), count),
    h('div', { class: 'menu-list' }, list));
  let users = new Map();
  let epoch = null;
  let version = 0;
  const socket = io('/presence', { transports: ['websocket'], forceNew: true,
    reconnectionDelay: 500, reconnectionDelayMax: 4000 });

  async function subscribe() {
    let ack = null;
    try {
      ack = await socket.timeout(ACK_TIMEOUT_MS).emitWithAck('subscribe', { scope });
    } catch { /* offline: the next connect subscribes again */ }
    if (!ack?.ok) return;
    epoch = ack.epoch;
    version = ack.version;
    users = new Map(ack.users.map((u) => [u.id, u]));
    render();
  }

  socket.on('connect', subscribe);
  socket.on('presence', (change) => {
    if (change?.scope !== scope) return;
    if (change.epoch === epoch && change.version <= version) return; // already counted
    if (change.epoch !== epoch || change.version !== version + 1) { subscribe(); return; }
    version = change.version;
    if (change.type === 'join') users.set(change.user.id, change.user);
    else users.delete(change.user.id);
    render();
  });

  function render() {
    const pupils = [...users.values()]
      .filter((u) => u.role === 'student' && String(u.id) !== String(me?.id))
      .sort((a, b) => a.name.localeCompare(b.name, 'fr'));
    count.textContent = String(pupils.length);
    el.dataset.count = String(pupils.length);
    replace(list, pupils.length
      ? pupils.map((u) => h('li', { 'data-user-id': u.id }, u.name,
        h('span', { class: 'muted' }, ` depuis ${hhmm(u.since)}`
          + (u.devices > 1 ? ` · ${u.devices} appareils` : ''))))
      : h('li', { class: 'empty' }, 'Aucun élève ne suit le tableau.'));
  }

  render();
  return {
    el,
    close() {
      socket.removeAllListeners();
      socket.disconnect();
    },
  };
}
