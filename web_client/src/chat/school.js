// The school team's corner of the messagerie: the CPE's reported messages, and the rules of
// the school's messaging for the administration (GET/PUT /api/chat/settings/<school>).
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { when } from './connection.js';

const RULES = [
  ['parents_to_teachers', 'Les parents peuvent écrire aux enseignant·es de leurs enfants'],
  ['parents_to_cpe', 'Les parents peuvent écrire au CPE'],
  ['parents_to_staff', "Les parents peuvent écrire à l'administration"],
  ['students_to_teachers', 'Les élèves peuvent écrire à leurs enseignant·es'],
  ['students_to_cpe', 'Les élèves peuvent écrire au CPE'],
  ['quiet_hours', 'Heures d’échange : en dehors, familles et élèves ne commencent pas de conversation'],
];

const hm = (min) => `${String(Math.floor(min / 60)).padStart(2, '0')}:${String(min % 60).padStart(2, '0')}`;
const minutes = (text) => { const [a, b] = text.split(':').map(Number); return a * 60 + b; };

export function schoolCorner(me, tz, say) {
  if (me.role === 'cpe') return reports(tz, say);
  if (me.role === 'staff' && me.school_id) return settings(me.school_id, say);
  return null;
}

const handledWhen = (ts, timeZone) => new Intl.DateTimeFormat('fr-FR',
  { day: 'numeric', month: 'long', hour: '2-digit', minute: '2-digit', timeZone }).format(new Date(ts * 1000));

// Handling applies to every report of the same message: the CPE handles the message.
function reports(tz, say) {
  const list = h('div', { class: 'reports' }, h('p', { class: 'muted' }, 'Chargement…'));
  const box = h('details', { class: 'school-corner' }, h('summary', { class: 'btn btn-light' }, 'Messages signalés'), list);

  // Notes being typed survive a live reload (another report arriving meanwhile).
  const drafts = new Map();

  const handle = async (r, body, done, button) => {
    button.disabled = true;
    try {
      await api.chatHandleReport(r.id, body);
      drafts.delete(r.id);
      say(done);
    } catch (err) {
      say(err.message); // e.g. « déjà traité par … » : the list below shows who did
    }
    await load();
  };

  const item = (r) => {
    const head = [
      h('p', { class: 'msg-meta' }, `${r.author} — signalé par ${r.reporter}, `, h('time', {}, when(r.created_at, tz))),
      h('p', { class: 'msg-body' }, r.body),
      r.reason ? h('p', { class: 'muted' }, `Motif : ${r.reason}`) : null,
      h('p', {}, h('a', { href: `#/messages/${r.conversation_id}` }, 'Voir la conversation')),
    ];
    if (r.handled_at) {
      return h('li', { class: 'report report-handled', dataset: { reportId: r.id } }, head,
        h('p', { class: 'report-state' }, `Traité par ${r.handled_by_name || 'un compte supprimé'} le ${handledWhen(r.handled_at, tz)}`),
        r.note ? h('p', { class: 'report-note' }, `Note : ${r.note}`) : null,
        h('button', { type: 'button', class: 'btn btn-light',
          onclick: (e) => handle(r, { handled: false }, 'Signalement rouvert.', e.currentTarget) }, 'Rouvrir'));
    }
    const noteId = `report-note-${r.id}`;
    const note = h('textarea', { id: noteId, maxlength: 500, rows: 2,
      oninput: () => drafts.set(r.id, note.value) });
    note.value = drafts.get(r.id) ?? '';
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Marquer comme traité');
    const form = h('form', { class: 'report-form' },
      h('p', { class: 'field' }, h('label', { for: noteId }, 'Note (facultative)'), note), submit);
    form.onsubmit = (e) => {
      e.preventDefault();
      const text = note.value.trim();
      handle(r, text ? { note: text } : {}, 'Signalement traité.', submit);
    };
    return h('li', { class: 'report report-open', dataset: { reportId: r.id } }, head, form);
  };

  async function load() {
    try {
      const { reports: rows } = await api.chatReports();
      const open = rows.filter((r) => !r.handled_at);
      const done = rows.filter((r) => r.handled_at);
      const focused = list.contains(document.activeElement) ? document.activeElement.id : '';
      replace(list,
        h('h3', {}, 'À traiter'),
        h('ul', { class: 'result-list' }, open.length ? open.map(item)
          : h('li', { class: 'empty' }, 'Aucun message signalé à traiter.')),
        done.length ? [h('h3', {}, 'Traités'), h('ul', { class: 'result-list' }, done.map(item))] : null);
      if (focused) document.getElementById(focused)?.focus();
    } catch (err) { say(err.message); }
  }

  box.addEventListener('toggle', () => { if (box.open) load(); });
  // Live: a new report, or one handled or reopened by any CPE of the school.
  box.refresh = () => { if (box.open) load(); };
  return box;
}

function settings(schoolId, say) {
  const form = h('form', { class: 'compose-form' }, h('p', { class: 'muted' }, 'Chargement…'));
  const box = h('details', { class: 'school-corner' }, h('summary', { class: 'btn btn-light' }, 'Règles de la messagerie'), form);
  box.addEventListener('toggle', async () => {
    if (!box.open) return;
    let rules;
    try { rules = await api.chatSettings(schoolId); } catch (err) { say(err.message); return; }
    const boxes = RULES.map(([key, label]) => h('p', { class: 'field' }, h('label', {},
      h('input', { type: 'checkbox', name: key, checked: rules[key] }), ` ${label}`)));
    const start = h('input', { type: 'time', id: 'day-start', value: hm(rules.day_start_min), required: true });
    const end = h('input', { type: 'time', id: 'day-end', value: hm(rules.day_end_min), required: true });
    replace(form, boxes,
      h('p', { class: 'field' }, h('label', { for: 'day-start' }, 'Début des échanges'), start),
      h('p', { class: 'field' }, h('label', { for: 'day-end' }, 'Fin des échanges'), end),
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Enregistrer'));
    form.onsubmit = async (e) => {
      e.preventDefault();
      const body = Object.fromEntries(RULES.map(([key]) => [key, form.elements[key].checked]));
      body.day_start_min = minutes(start.value);
      body.day_end_min = minutes(end.value);
      try { await api.chatSaveSettings(schoolId, body); say('Règles enregistrées.'); } catch (err) { say(err.message); }
    };
  });
  return box;
}
