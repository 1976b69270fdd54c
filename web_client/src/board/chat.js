// The board session's chat panel: pupils ask questions, the teacher answers, deletes a
// message or closes the questions (namespace /chat, `live_join` with the board id).
// A drawer that stays closed until opened, with the count of new questions on its button.
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { ChatConnection } from '../chat/connection.js';
import { createThread } from '../chat/thread.js';

export function boardChat(boardId, { tz = 'Europe/Paris' } = {}) {
  const badge = h('span', { class: 'badge', hidden: true });
  const notice = h('p', { class: 'chat-notice', role: 'status', 'aria-live': 'polite' });
  const body = h('div', { class: 'board-chat-body' }, h('p', { class: 'muted' }, 'Connexion…'));
  const el = h('details', { class: 'board-chat' },
    h('summary', { class: 'btn btn-primary' }, 'Questions ', badge), notice, body);
  let thread = null;
  let unseen = 0;
  let limits = {};
  const say = (text) => { notice.textContent = text; setTimeout(() => { if (notice.textContent === text) notice.textContent = ''; }, 6000); };
  const seen = () => { unseen = 0; badge.hidden = true; };
  el.addEventListener('toggle', () => { if (el.open) seen(); });

  const conn = new ChatConnection({
    async welcome(data) {
      limits = data.limits;
      if (!thread) await join(data.me);
    },
    event(ev) {
      thread?.apply(ev);
      if (ev.kind === 'message' && !el.open && ev.message?.author_id !== thread?.me?.id) {
        unseen += 1;
        badge.hidden = false;
        badge.textContent = String(unseen);
      }
    },
    reset() { thread = null; join(); },
    typing(t) { if (t.conversation_id === thread?.conv?.id) thread.typing(t); },
  });

  async function join(me) {
    const who = me ?? (await api.me().then((m) => m.user, () => null));
    if (!who) return;
    const answer = await conn.call('live_join', { board_id: boardId });
    if (!answer.ok) { replace(body, h('p', { class: 'muted' }, answer.error.message)); return; }
    thread = createThread({ conn, me: { id: who.id, role: who.role }, tz, limits, live: true, onError: say });
    thread.me = who;
    thread.load(answer.conversation, answer);
    conn.follow(answer.conversation.id, answer.head);
    conn.sync(answer.conversation.id);
    replace(body, thread.el);
  }

  return { el, close() { thread?.destroy(); conn.close(); } };
}
