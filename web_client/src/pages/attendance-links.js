// « Vie scolaire » on Mon espace: a teacher's rolls of the day, the CPE's dashboard, a
// parent's or a student's absences.
import { h, replace } from '../dom.js';
import { today } from '../dates.js';
import { AttendanceConnection, ROLL_STATES, apiJson } from '../attendance/connection.js';
import { countOf, liveLog } from '../announce.js';
import { roomPhrase } from '../attendance/french.js';

export function attendanceSection(ctx) {
  const role = ctx.me.user.role;
  const section = (...content) => h('section', { class: 'card attendance-links',
    'aria-labelledby': 'attendance-title' }, h('h2', { id: 'attendance-title' }, 'Vie scolaire'), ...content);
  if (role === 'cpe' || role === 'staff') {
    return section(h('a', { class: 'btn btn-primary', href: '#/vie-scolaire' },
      'Tableau de bord des appels'));
  }
  if (role === 'parent') return parentSection(section);
  if (role === 'student') {
    return section(h('a', { class: 'btn', href: '#/absences' }, 'Mes absences et retards'));
  }
  if (role !== 'teacher') return null;
  const day = ctx.date ?? today(ctx.tz);
  const list = h('ul', { class: 'roll-links', 'aria-busy': 'true' });
  apiJson('GET', `/api/attendance/my-rolls?date=${day}`).then(({ rolls, closed }) => {
    list.removeAttribute('aria-busy');
    if (closed) { replace(list, h('li', { class: 'empty' }, `Pas de cours ce jour : ${closed}.`)); return; }
    replace(list, rolls.length ? rolls.map((r) => h('li', { 'data-state': r.state }, h('a', {
      class: `btn${r.overdue ? ' btn-primary' : ''}`,
      href: r.study_hall_id ? `#/appel?permanence=${r.study_hall_id}&date=${day}`
        : `#/appel?slot=${r.slot_id}&date=${day}`,
    }, `${r.state === 'done' ? "Voir l'appel" : "Faire l'appel"} : ${r.start} ${r.class_name} (${
      r.study_hall_id ? roomPhrase(r.room) : r.subject})`),
    h('span', { class: 'roll-link-state' }, ` ${ROLL_STATES[r.state]}`,
      r.replacing ? ` — remplacement de ${r.replacing}` : '',
      r.alert_label ? ` — ${r.alert_label}` : '')))
      : h('li', { class: 'empty' }, 'Aucun cours ce jour.'));
  }, (err) => ctx.fail(err, list));
  // The reminder of a roll not taken 10 minutes after the start reaches Mon espace too.
  const alerts = h('div', { class: 'roll-reminders', role: 'alert' });
  const conn = new AttendanceConnection(null);
  conn.onConnect = () => { alerts.dataset.live = 'true'; }; // listening for reminders
  conn.on('reminder', (r) => alerts.append(h('p', { class: 'alert', 'data-kind': r.kind ?? '' }, `${r.message} `,
    h('a', { href: r.study_hall_id ? `#/appel?permanence=${r.study_hall_id}&date=${r.date}`
      : `#/appel?slot=${r.slot_id}&date=${r.date}` }, r.kind === 'not_started' ? "Faire l'appel" : "Valider l'appel"))));
  const close = () => { conn.close(); window.removeEventListener('hashchange', close); };
  window.addEventListener('hashchange', close);
  return section(alerts, h('h3', {}, 'Appels du jour'), list);
}

/** A guardian's way to the absences, with the unread notices as a badge that follows live,
 *  and each new notice said as its sentence (who, when). */
function parentSection(section) {
  const count = h('span', { class: 'badge', 'aria-hidden': 'true', hidden: true });
  const words = h('span', { class: 'visually-hidden' });
  const link = h('a', { class: 'btn btn-primary', href: '#/absences' },
    'Absences et notifications', count, words);
  const arrived = liveLog({ label: 'Nouvelles notifications', className: 'live-log' });
  let unread = 0;
  const show = () => {
    count.hidden = unread === 0;
    count.textContent = String(unread);
    words.textContent = unread ? ` (${countOf(unread, 'non lue', 'non lues')})` : '';
  };
  const seen = new Set();
  const conn = new AttendanceConnection(null);
  conn.onConnect = async () => {
    try {
      const ack = await conn.call('follow_feed', {});
      for (const x of ack.snapshot ?? []) seen.add(x.id);
      unread = ack.unread ?? 0;
      show();
    } catch { /* the badge is a convenience: the absences page says it all */ }
  };
  conn.on('notice', (x) => {
    if (seen.has(x.id)) return;
    seen.add(x.id);
    if (!x.read) unread += 1;
    show();
    arrived.say(`Nouvelle notification : ${x.body}`);
  });
  conn.on('notices_read', ({ ids }) => { unread = Math.max(0, unread - ids.length); show(); });
  const close = () => { conn.close(); window.removeEventListener('hashchange', close); };
  window.addEventListener('hashchange', close);
  return section(arrived.el, link);
}
