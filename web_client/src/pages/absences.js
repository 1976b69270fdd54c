// « Absences » (#/absences): for a guardian, the live feed of the vie scolaire's notices
// (caught up exactly once after being away, read state shared by every device), a reason
// given straight from a notice, each child's absence history, and browser notifications.
// For a student, their own record.
import { h, replace, setTitle } from '../dom.js';
import { apiJson, apiUpload } from '../api.js';
import { AttendanceConnection } from '../attendance/connection.js';
import { currentSubscription, enablePush, pushSupported } from '../attendance/push.js';
import { longDate, today } from '../dates.js';
import { liveStatus } from '../socket.js';
import { countOf, liveLog } from '../announce.js';
import { keepPlace } from '../focus.js';
import { when } from '../attendance/french.js';

const POSITION_KEY = 'ent.attendance.feed';

export function renderAbsences(root, ctx) {
  setTitle('Absences');
  const parent = ctx.me.user.role === 'parent';
  const status = liveStatus();
  const error = h('div', { class: 'alert', role: 'alert' });
  const notices = h('ul', { class: 'notice-list' });
  const unread = h('p', { class: 'muted' });
  // A notice that arrives live is said as its sentence (who, when), not as a count.
  const arrived = liveLog({ label: 'Nouvelles notifications', className: 'live-log' });
  const records = h('div', { class: 'records' });
  const pushBox = h('div', { class: 'push-box' });
  const header = h('header', { class: 'topbar' }, h('div', { class: 'topbar-inner' },
    h('a', { class: 'btn btn-light', href: '#/' }, 'Mon espace'), status));
  const feedSection = parent ? h('section', { class: 'card', 'aria-labelledby': 'notices-title' },
    h('h2', { id: 'notices-title' }, 'Notifications de la vie scolaire'), unread, arrived.el, pushBox,
    h('button', { type: 'button', class: 'btn', onclick: () => markRead(null) }, 'Tout marquer comme lu'),
    notices) : null;
  replace(root, header, h('main', { id: 'contenu', class: 'absences-page', tabindex: '-1' },
    h('h1', { class: 'page-title', tabindex: '-1' }, parent ? 'Absences de mes enfants' : 'Mes absences'),
    error, feedSection,
    h('section', { class: 'card', 'aria-labelledby': 'history-title' },
      h('h2', { id: 'history-title' }, 'Historique'), records)));

  const fail = (err) => replace(error, h('p', {}, err.message));
  const sent = h('p', { class: 'sent', role: 'status', 'aria-live': 'polite' });
  error.after(sent);
  const items = new Map(); // notice id → notice
  let unreadCount = null; // the server's count of unread notices
  let loadedAll = false;
  let reasons = [];
  let conn = null;
  let pointed = ctx.noticeId ?? null; // from a tapped notification: go to its reason form

  async function loadRecords() {
    try {
      const me = await apiJson('GET', '/api/attendance/me');
      const list = parent ? me.children : [me];
      reasons = list[0]?.reasons ?? [];
      keepPlace(records, 'data-event-id', () => replace(records, list.map((r) => childRecord(r))));
      drawNotices();
    } catch (err) { fail(err); }
  }

  const KIND_TITLES = { late: (e) => `Retard de ${e.minutes} min`,
    left_early: (e) => `Départ anticipé (${e.minutes} min avant la fin)`, absent: () => 'Absence' };

  function proposalsOf(e) {
    const lines = [
      ...(e.proposals ?? []).map((x) => h('li', { class: 'proposal' },
        `Vous avez proposé « ${x.reason_label} »${x.comment ? ` (« ${x.comment} »)` : ''} le ${when(x.created_at)}`,
        x.documents.length ? ` — justificatif joint : ${x.documents.map((d) => d.filename).join(', ')}` : '', '.')),
      ...(e.decisions ?? []).map((d) => h('li', { class: `decision ${d.accepted ? 'accepted' : 'refused'}` },
        `Motif ${d.accepted ? 'accepté' : 'refusé'} par la vie scolaire le ${when(d.decided_at)}`,
        d.comment ? ` : « ${d.comment} »` : '', '.')),
    ];
    return lines.length ? h('ul', { class: 'proposal-list' }, lines) : null;
  }

  function declareForm(r) {
    const id = `declare-${r.student.id}`;
    const from = h('input', { type: 'date', id: `${id}-from`, required: true, min: today(ctx.tz ?? 'Europe/Paris') });
    const to = h('input', { type: 'date', id: `${id}-to` });
    const part = h('select', { id: `${id}-part` }, h('option', { value: 'day' }, 'Journée entière'),
      h('option', { value: 'morning' }, 'Matin'), h('option', { value: 'afternoon' }, 'Après-midi'));
    const select = h('select', { id: `${id}-reason`, required: true },
      h('option', { value: '' }, 'Choisir un motif…'),
      r.reasons.map((x) => h('option', { value: x.code }, x.label)));
    const comment = h('input', { type: 'text', maxlength: '300', id: `${id}-c`, placeholder: 'Précision (facultatif)' });
    const said = h('p', { role: 'status', 'aria-live': 'polite' });
    return h('details', { class: 'declare' }, h('summary', {}, `Signaler une absence à venir de ${r.student.name}`),
      h('form', { class: 'declare-form', onsubmit: async (e) => {
        e.preventDefault();
        try {
          await apiJson('POST', `/api/attendance/students/${r.student.id}/declarations`, {
            date_from: from.value, date_to: to.value || from.value, part: part.value,
            reason_code: select.value, comment: comment.value });
          said.textContent = `Absence signalée pour le ${longDate(from.value)}.`;
          replace(error);
          loadRecords();
        } catch (err) { fail(err); }
      } },
      h('label', { for: from.id }, 'Du', from), h('label', { for: to.id }, 'au (facultatif)', to),
      h('label', { for: part.id }, 'Quand', part), h('label', { for: select.id }, 'Motif', select),
      h('label', { for: comment.id }, 'Précision', comment),
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Signaler l\'absence')), said);
  }

  function childRecord(r) {
    const hd = r.half_days;
    const c = r.counts ?? {};
    return h('article', { class: 'child-record', 'aria-labelledby': `rec-${r.student.id}` },
      h('h3', { id: `rec-${r.student.id}` }, r.student.name),
      h('p', {}, `${hd.total} demi-journée(s) d'absence depuis le ${longDate(r.from)} : `,
        `${hd.justified} justifiée(s), ${hd.unjustified} non justifiée(s).`,
        c.late || c.left_early ? ` ${c.late ?? 0} retard(s), ${c.left_early ?? 0} départ(s) anticipé(s).` : ''),
      (r.declarations ?? []).filter((d) => !d.cancelled_at).length ? h('ul', { class: 'declarations' },
        r.declarations.filter((d) => !d.cancelled_at).map((d) => h('li', { 'data-declaration-id': d.id },
          `Absence signalée ${d.date_from === d.date_to ? `le ${longDate(d.date_from)}` : `du ${longDate(d.date_from)} au ${longDate(d.date_to)}`}`,
          d.part !== 'day' ? ` (${d.part === 'morning' ? 'matin' : 'après-midi'})` : '', ` : ${d.reason_label}. `,
          r.can_justify ? h('button', { type: 'button', class: 'btn', onclick: async () => {
            try { await apiJson('DELETE', `/api/attendance/declarations/${d.id}`); loadRecords(); } catch (err) { fail(err); }
          } }, 'Annuler') : null))) : null,
      r.can_justify ? declareForm(r) : null,
      r.events.length ? h('ul', { class: 'event-list' }, r.events.map((e) => h('li', {
        class: e.cancelled ? 'cancelled' : null, 'data-event-id': e.id },
      h('p', {}, h('strong', {}, (KIND_TITLES[e.kind] ?? KIND_TITLES.absent)(e)),
        ` — ${longDate(e.date)}, ${e.start}–${e.end}${e.subject ? ` (${e.subject})` : ''}. `,
        e.cancelled ? 'Annulée par une correction.' : h('span', { class: 'badge' }, e.justification_label),
        e.reason_label ? ` Motif : ${e.reason_label}.` : ''),
      proposalsOf(e),
      r.can_justify && !e.cancelled && e.justification !== 'accepted'
        ? reasonForm(e.id, `${r.student.name}, ${longDate(e.date)} ${e.start}`) : null)))
        : h('p', { class: 'empty' }, 'Aucune absence ni retard sur la période.'));
  }

  function reasonForm(eventId, about) {
    const id = `reason-${eventId}-${Math.random().toString(36).slice(2, 7)}`;
    const select = h('select', { id, required: true },
      h('option', { value: '' }, 'Choisir un motif…'),
      reasons.map((r) => h('option', { value: r.code }, r.label)));
    const comment = h('input', { type: 'text', maxlength: '300', id: `${id}-c`,
      placeholder: 'Précision (facultatif)', 'aria-label': 'Précision (facultatif)' });
    // A photo of the certificate taken with the phone, or a PDF.
    const file = h('input', { type: 'file', id: `${id}-f`, class: 'doc-input',
      accept: 'image/jpeg,image/png,image/webp,application/pdf' });
    return h('form', { class: 'reason-form', onsubmit: async (e) => {
      e.preventDefault();
      if (!select.value) { select.focus(); return; }
      try {
        if (file.files[0]) {
          const form = new FormData();
          form.append('reason_code', select.value);
          form.append('comment', comment.value);
          form.append('document', file.files[0]);
          await apiUpload(`/api/attendance/absences/${eventId}/reason`, form);
        } else {
          await apiJson('POST', `/api/attendance/absences/${eventId}/reason`,
            { reason_code: select.value, comment: comment.value });
        }
        replace(error);
        sent.textContent = `Motif envoyé (${about}) : ${select.selectedOptions[0].textContent}. `
          + 'La vie scolaire va le traiter.';
        await loadRecords();
      } catch (err) { fail(err); }
    } },
    h('label', { for: id }, `Motif (${about})`), select,
    comment, h('label', { for: `${id}-f`, class: 'doc-label' }, 'Justificatif (photo ou PDF, facultatif)'), file,
    h('button', { type: 'submit', class: 'btn btn-primary' }, 'Envoyer le motif'));
  }

  function drawNotices() {
    if (!parent) return;
    const list = [...items.values()].sort((a, b) => b.id - a.id);
    // The server's count: notices older than those loaded here may still be unread.
    const n = Math.max(unreadCount ?? 0, list.filter((x) => !x.read).length);
    unread.textContent = n ? countOf(n, 'notification non lue', 'notifications non lues')
      : 'Aucune notification non lue';
    keepPlace(notices, 'data-notice-id', () => replace(notices, list.length ? list.map((x) => h('li', {
      class: `notice-item${x.read ? '' : ' unread'}`, 'data-notice-id': x.id, 'data-kind': x.kind },
    h('p', { class: 'notice-title' }, h('strong', {}, x.title), x.read ? '' : h('span', { class: 'badge' }, 'Nouveau')),
    h('p', {}, x.body),
    x.can_justify && x.event_id ? reasonForm(x.event_id, x.student_name) : null,
    x.read ? null : h('button', { type: 'button', class: 'btn', onclick: () => markRead([x.id]) },
      'Marquer comme lu')))
      : h('li', { class: 'empty' }, 'Aucune notification.')));
    if (pointed && items.has(pointed) && (!items.get(pointed).can_justify || reasons.length)) {
      const li = notices.querySelector(`[data-notice-id="${pointed}"]`);
      pointed = null;
      li.classList.add('pointed');
      li.scrollIntoView({ block: 'center' });
      (li.querySelector('select') ?? li.querySelector('button'))?.focus();
    }
  }

  async function markRead(ids) {
    try {
      const ack = await conn.call('read_notices', ids ? { ids } : {});
      for (const id of ack.read) if (items.has(id)) items.get(id).read = true;
      unreadCount = ack.unread;
      drawNotices();
    } catch (err) { fail(err); }
  }

  function remember(epoch, seq) {
    localStorage.setItem(`${POSITION_KEY}.${ctx.me.user.id}`, JSON.stringify({ epoch, seq }));
  }

  async function follow() {
    const saved = JSON.parse(localStorage.getItem(`${POSITION_KEY}.${ctx.me.user.id}`) ?? 'null');
    try {
      const ack = await conn.call('follow_feed', saved ? { since: saved } : {});
      for (const x of ack.snapshot ?? []) items.set(x.id, x);
      // Resumed from a saved position: only what was missed came back. The older notices
      // (read or not) come from the stored list, once per page, so none is lost from view.
      if (ack.snapshot === undefined && !loadedAll) {
        const all = await apiJson('GET', '/api/attendance/notices');
        for (const x of all.snapshot) if (!items.has(x.id)) items.set(x.id, x);
        loadedAll = true;
      }
      for (const x of ack.notices ?? []) items.set(x.id, x);
      unreadCount = ack.unread;
      remember(ack.epoch, ack.seq);
      drawNotices();
    } catch (err) { fail(err); }
  }

  async function drawPush() {
    if (!pushSupported()) {
      replace(pushBox, h('p', { class: 'muted' }, 'Ce navigateur ne reçoit pas de notifications.'));
      return;
    }
    const sub = await currentSubscription().catch(() => null);
    replace(pushBox, sub ? h('p', { class: 'muted' }, 'Notifications du navigateur activées.')
      : h('button', { type: 'button', class: 'btn', onclick: async () => {
        try { await enablePush(); drawPush(); } catch (err) { fail(err); }
      } }, 'Recevoir les notifications sur cet appareil'));
  }

  if (parent) {
    conn = new AttendanceConnection(status);
    conn.onConnect = follow;
    conn.on('notice', (x) => {
      if (!items.has(x.id)) arrived.say(`Nouvelle notification : ${x.body}`);
      if (!items.has(x.id) && !x.read && unreadCount !== null) unreadCount += 1;
      items.set(x.id, x);
      remember(x.epoch, x.seq);
      drawNotices();
      if (x.event_id) loadRecords();
    });
    conn.on('feed_reset', (ack) => {
      for (const x of ack.snapshot ?? []) items.set(x.id, x);
      unreadCount = ack.unread;
      remember(ack.epoch, ack.seq);
      drawNotices();
    });
    conn.on('notices_read', ({ ids }) => {
      for (const id of ids) {
        if (items.has(id) && !items.get(id).read && unreadCount) unreadCount -= 1;
        if (items.has(id)) items.get(id).read = true;
      }
      drawNotices();
    });
    drawPush();
  } else {
    status.set('online');
  }
  loadRecords();
  return () => conn?.close();
}
