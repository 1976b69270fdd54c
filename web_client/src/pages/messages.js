// « Messagerie »: the conversation list (unread badges), one thread, a new message form.
// On a phone one pane shows at a time (list, then thread); on a wide screen both.
import { api } from '../api.js';
import { h, replace, setTitle } from '../dom.js';
import { ChatConnection, when } from '../chat/connection.js';
import { createThread } from '../chat/thread.js';
import { composeForm } from '../chat/compose.js';
import { schoolCorner } from '../chat/school.js';
import { watchRoster } from '../roster.js';

const KIND_LABELS = { direct: '', group: 'Groupe', information: 'Information', live: 'Séance' };

export function renderMessages(root, { me, tz, conversationId, status, open }) {
  setTitle('Messagerie');
  const user = { id: me.user.id, role: me.user.role, name: me.user.name, school_id: me.user.school_id };
  const s = { conversations: [], limits: {}, thread: null, openId: conversationId ?? null };
  const notice = h('p', { class: 'chat-notice', role: 'status', 'aria-live': 'polite' });
  // Outcomes of my reports (the vie scolaire handled them): they stay until « Compris ».
  const outcomes = h('ul', { class: 'outcomes', 'aria-live': 'polite' });
  const listEl = h('ul', { class: 'conv-list', 'aria-busy': 'true' }, h('li', { class: 'muted' }, 'Chargement…'));
  const totalBadge = h('span', { class: 'badge', hidden: true });
  const search = h('input', { type: 'search', class: 'chat-search', placeholder: 'Rechercher dans mes messages',
    'aria-label': 'Rechercher dans mes messages', maxlength: '200' });
  const results = h('div', { class: 'search-results' });
  const listPane = h('aside', { class: 'conv-pane', 'aria-label': 'Conversations' },
    h('div', { class: 'conv-pane-head' },
      h('h1', { class: 'page-title', tabindex: '-1' }, 'Messagerie ', totalBadge),
      h('a', { class: 'btn btn-primary', href: '#/messages/new' }, 'Nouveau message')),
    h('form', { role: 'search', onsubmit: (e) => { e.preventDefault(); runSearch(); } }, search),
    results, listEl, h('div', { class: 'school-corner-slot' }));
  const threadPane = h('div', { class: 'thread-pane' },
    h('p', { class: 'empty' }, 'Choisissez une conversation.'));
  const back = h('a', { class: 'btn btn-light back-list', href: '#/messages' }, '← Conversations');
  const header = h('header', { class: 'topbar' },
    h('div', { class: 'topbar-inner' },
      h('a', { class: 'btn btn-light', href: '#/' }, '← Mon espace'),
      h('p', { class: 'brand' }, 'Messagerie'), status));
  const page = h('main', { id: 'contenu', class: 'chat-page', tabindex: '-1',
    dataset: { view: conversationId ? 'thread' : 'list' } },
    notice, outcomes, h('div', { class: 'chat-panes' }, listPane, h('div', { class: 'thread-col' }, back, threadPane)));
  replace(root, header, page);
  const say = (text) => { notice.textContent = text; setTimeout(() => { if (notice.textContent === text) notice.textContent = ''; }, 6000); };
  const corner = schoolCorner(user, tz, say);
  page.querySelector('.school-corner-slot').append(corner ?? '');

  const conn = new ChatConnection({
    welcome(data) {
      s.conversations = data.conversations;
      s.limits = data.limits;
      for (const o of data.report_outcomes ?? []) showOutcome(o);
      renderList();
      if (s.openId === 'new') showCompose();
      else if (s.openId && !s.thread) openThread(s.openId);
    },
    notice(ev) {
      const c = s.conversations.find((x) => x.id === ev.conversation_id);
      if (!c) { refreshList(); return; }
      if (ev.seq > c.last_seq) c.last_seq = ev.seq;
      if (ev.kind === 'message' && ev.message) {
        c.last = ev.message;
        c.last_at = ev.at;
        const reading = s.thread?.conv?.id === c.id && document.visibilityState === 'visible';
        if (ev.message.author_id !== user.id && !reading) c.unread += 1;
      }
      renderList();
    },
    event(ev) {
      if (s.thread?.conv?.id !== ev.conversation_id) return;
      s.thread.apply(ev);
      markRead(ev.conversation_id, ev.seq);
    },
    reset(id) { if (s.thread?.conv?.id === id) openThread(id); },
    conversation() { refreshList(); },
    typing(t) { if (s.thread?.conv?.id === t.conversation_id) s.thread.typing(t); },
    acked(a) { if (s.thread?.conv?.id === a.conversation_id) s.thread.acked(a); },
    receipt(r) {
      s.thread?.receipt?.(r); // « Lu » under my messages, live
      if (r.user_id !== user.id) return;
      const c = s.conversations.find((x) => x.id === r.conversation_id);
      if (c) { c.read_seq = Math.max(c.read_seq, r.read_seq); if (r.read_seq >= c.last_seq) c.unread = 0; renderList(); }
    },
    report() { corner?.refresh?.(); },
    report_handled() { corner?.refresh?.(); },
    report_outcome(o) { showOutcome(o); },
    muted(m) { const c = s.conversations.find((x) => x.id === m.conversation_id); if (c) { c.muted = m.muted; renderList(); } },
    status(state) { status?.set?.(state); },
  });

  function showOutcome(o) {
    if (outcomes.querySelector(`[data-report-id="${o.report_id}"]`)) return;
    const item = h('li', { class: 'outcome', dataset: { reportId: String(o.report_id) } },
      h('span', {}, o.message), ' ',
      h('a', { href: `#/messages/${o.conversation_id}` }, 'Voir la conversation'), ' ',
      h('button', { type: 'button', class: 'btn btn-light btn-small', onclick: async () => {
        const answer = await conn.call('outcomes_seen', { report_ids: [o.report_id] });
        if (answer.ok) item.remove(); else say(answer.error.message);
      } }, 'Compris'));
    outcomes.append(item);
  }

  // Who has the open conversation on screen (presence), shown as « en ligne » in its header.
  const roster = watchRoster((users) => s.thread?.online(users));

  async function refreshList() {
    const answer = await conn.call('list');
    if (answer.ok) { s.conversations = answer.conversations; renderList(); }
  }

  function titleOf(c) {
    return c.title || c.participants.filter((p) => p.id !== user.id).map((p) => p.name).join(', ') || 'Conversation';
  }

  function renderList() {
    listEl.removeAttribute('aria-busy');
    const total = s.conversations.filter((c) => !c.muted).reduce((n, c) => n + c.unread, 0);
    totalBadge.hidden = total === 0;
    totalBadge.textContent = String(total);
    totalBadge.setAttribute('aria-label', `${total} non lu${total > 1 ? 's' : ''}`);
    if (!s.conversations.length) {
      replace(listEl, h('li', { class: 'empty' }, 'Aucune conversation pour le moment.'));
      return;
    }
    replace(listEl, s.conversations.map((c) => h('li', {},
      h('a', { class: `conv${c.id === s.thread?.conv?.id ? ' conv-open' : ''}${c.unread ? ' conv-unread' : ''}`,
        href: `#/messages/${c.id}`, 'aria-current': c.id === s.thread?.conv?.id ? 'true' : false },
        // Title and tags on the first line, the badge at its end; the last message and the
        // time on the second: fixed places, so a tag never pushes the badge onto a new row.
        h('span', { class: 'conv-head' },
          h('span', { class: 'conv-title' }, titleOf(c)),
          KIND_LABELS[c.kind] ? h('span', { class: 'conv-kind' }, KIND_LABELS[c.kind]) : null,
          c.muted ? h('span', { class: 'conv-kind' }, 'En sourdine') : null),
        c.unread ? h('span', { class: 'badge conv-badge', 'aria-label': `${c.unread} non lu${c.unread > 1 ? 's' : ''}` }, String(c.unread)) : null,
        h('span', { class: 'conv-last' }, c.last ? c.last.body : ''),
        h('time', { class: 'conv-when' }, when(c.last_at, tz))))));
  }

  async function openThread(id) {
    const [detail, page] = await Promise.all([
      conn.call('open', { conversation_id: id }), conn.call('history', { conversation_id: id })]);
    if (!detail.ok || !page.ok) {
      replace(threadPane, h('div', { class: 'alert', role: 'alert' }, h('p', {}, (detail.ok ? page : detail).error.message)));
      return;
    }
    if (s.thread) {
      const was = s.thread.conv.id;
      conn.unfollow(was);
      s.thread.destroy();
      if (was !== id) conn.call('close', { conversation_id: was }); // no longer viewing it
    }
    s.thread = createThread({ conn, me: user, tz, limits: s.limits, onError: say });
    s.thread.load(detail.conversation, page);
    roster.watch(`conversation:${id}`);
    replace(threadPane, s.thread.el);
    conn.follow(id, page.head);
    conn.sync(id); // anything that arrived between the page and following
    markRead(id, page.head);
    renderList();
    s.thread.el.querySelector('.messages')?.lastElementChild?.scrollIntoView?.({ block: 'end' });
  }

  async function markRead(id, seq) {
    const c = s.conversations.find((x) => x.id === id);
    if (document.visibilityState !== 'visible') return;
    const answer = await conn.call('read', { conversation_id: id, seq });
    if (answer.ok && c) { c.unread = 0; c.read_seq = answer.read_seq; renderList(); }
  }

  function showCompose() {
    page.dataset.view = 'thread';
    replace(threadPane, composeForm({ api, conn, me: user, limits: s.limits, onError: say,
      onSent: (convId) => open(`#/messages/${convId}`) }));
  }

  async function runSearch() {
    const q = search.value.trim();
    if (!q) { replace(results); return; }
    const answer = await conn.call('search', { q });
    if (!answer.ok) { say(answer.error.message); return; }
    replace(results, h('h2', { class: 'small-title' }, `Résultats (${answer.messages.length})`),
      answer.messages.length ? h('ul', { class: 'result-list' }, answer.messages.map((m) =>
        h('li', {}, h('a', { href: `#/messages/${m.conversation_id}` }, m.body.slice(0, 140)),
          ' ', h('time', {}, when(m.created_at, tz))))) : h('p', { class: 'empty' }, 'Aucun message trouvé.'));
  }

  const onVisible = () => {
    if (document.visibilityState === 'visible' && s.thread?.conv) markRead(s.thread.conv.id, s.thread.conv.last_seq ?? 0);
  };
  document.addEventListener('visibilitychange', onVisible);

  return {
    show(id) { // the route changed within the page
      s.openId = id ?? null;
      page.dataset.view = id ? 'thread' : 'list';
      if (id === 'new') showCompose();
      else if (id) openThread(id);
    },
    close() {
      document.removeEventListener('visibilitychange', onVisible);
      s.thread?.destroy();
      roster.close();
      conn.close();
    },
  };
}
