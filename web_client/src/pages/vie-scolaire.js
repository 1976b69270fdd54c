// « Vie scolaire » (#/vie-scolaire?date=…): the CPE's live grid of the day's rolls (not
// taken / in progress / validated, absent and late counts, rolls not taken 10 minutes after
// the start highlighted), and the absences to handle: accept or refuse the reason. A study
// hall (permanence) is opened here for a slot of the day, then its roll page adds the
// pupils who come in.
import { apiJson } from '../api.js';
import { h, replace, setTitle } from '../dom.js';
import { AttendanceConnection, ROLL_STATES } from '../attendance/connection.js';
import { longDate } from '../dates.js';
import { reasonsSection } from '../attendance/reasons.js';
import { liveStatus } from '../socket.js';
import { labelColumns, liveLog } from '../announce.js';
import { keepPlace } from '../focus.js';
import { count, when } from '../attendance/french.js';
import { calendarSection } from '../attendance/calendar.js';
import { alertsSection } from '../attendance/alerts.js';

export function renderVieScolaire(root, { date }) {
  setTitle('Vie scolaire');
  const status = liveStatus();
  const conn = new AttendanceConnection(status);
  const model = { rows: [], pending: new Map(), date: null, reasons: [], teachers: [],
    canReplace: false };
  const dateLine = h('p', { class: 'muted' });
  const summary = h('p', { class: 'dash-summary' });
  // What changes live, one line each (the summary above is not re-read on every redraw).
  const changes = liveLog({ label: 'Dernières mises à jour', className: 'live-log dash-changes' });
  const skipTable = h('a', { class: 'btn skip-inline', href: '#hall-title', onclick: (e) => {
    e.preventDefault(); // the hash is the router's: move focus instead
    document.getElementById('hall-title')?.focus();
  } }, 'Passer le tableau des appels');
  const error = h('div', { class: 'alert', role: 'alert' });
  const grid = h('tbody');
  const pendingList = h('ul', { class: 'pending-list' });
  const reasonsBox = h('div', {});
  const calendarBox = h('div', {});
  // « À surveiller »: the rolls not started, left « en cours » or not validated at the end.
  const watchList = h('ul', { class: 'watch-list' });
  const closedLine = h('p', { class: 'closed-day', hidden: true });
  const alerts = alertsSection();
  const hallRoom = h('input', { type: 'text', id: 'hall-room', maxlength: '60', required: true,
    value: 'Salle de permanence' });
  const hallStart = h('input', { type: 'time', id: 'hall-start', required: true, value: '08:00' });
  const hallEnd = h('input', { type: 'time', id: 'hall-end', required: true, value: '09:00' });
  const hallForm = h('form', { class: 'hall-new-form', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const out = await conn.call('create_study_hall', { room: hallRoom.value,
        start: hallStart.value, end: hallEnd.value, date: model.date });
      window.location.hash = `#/appel?permanence=${out.roll.study_hall_id}&date=${out.roll.date}`;
    } catch (err) { replace(error, h('p', {}, err.message)); }
  } },
  h('label', { for: 'hall-room' }, 'Salle', hallRoom),
  h('label', { for: 'hall-start' }, 'Début', hallStart),
  h('label', { for: 'hall-end' }, 'Fin', hallEnd),
  h('button', { type: 'submit', class: 'btn btn-primary' }, 'Ouvrir la permanence'));
  const exportLink = h('a', { class: 'btn', href: '/api/attendance/export.csv', download: true },
    'Exporter les absences (CSV)');
  const header = h('header', { class: 'topbar' }, h('div', { class: 'topbar-inner' },
    h('a', { class: 'btn btn-light', href: '#/' }, 'Mon espace'), status));
  replace(root, header, h('main', { id: 'contenu', class: 'dash-page', tabindex: '-1' },
    h('h1', { class: 'page-title', tabindex: '-1' }, 'Vie scolaire — appels du jour'),
    dateLine, closedLine, error, summary, changes.el,
    // Before the lists of the day's rolls (on a busy day, dozens of links each): straight on.
    skipTable,
    h('section', { class: 'card', 'aria-labelledby': 'watch-title' },
      h('h2', { id: 'watch-title' }, 'Appels en retard ou non validés'), watchList),
    h('section', { class: 'card', 'aria-labelledby': 'grid-title' },
      h('h2', { id: 'grid-title' }, 'Appels'),
      h('div', { class: 'table-wrap' }, labelColumns(h('table', { class: 'dash-grid' },
        h('thead', {}, h('tr', {}, ['Heure', 'Classe', 'Cours', 'Enseignant·e', 'État', 'Absents', 'Retards']
          .map((c) => h('th', { scope: 'col' }, c)))),
        grid)))),
    h('section', { class: 'card', 'aria-labelledby': 'hall-title' },
      h('h2', { id: 'hall-title', tabindex: '-1' }, 'Permanence'),
      h('p', { class: 'muted' }, "Ouvrez l'appel d'une permanence pour un créneau du jour, puis "
        + 'ajoutez les élèves présents.'), hallForm),
    h('section', { class: 'card', 'aria-labelledby': 'pending-title' },
      h('h2', { id: 'pending-title' }, 'Absences à traiter'), pendingList,
      h('p', { class: 'dash-links' }, exportLink, ' ',
        h('a', { class: 'btn', href: '#/vie-scolaire/bilan' }, 'Bilan par élève'))),
    alerts.element, calendarBox, reasonsBox));

  async function load() {
    try {
      const data = await conn.call('watch_dashboard', date ? { date } : {});
      model.rows = data.rows;
      model.date = data.date;
      model.closed = data.closed;
      model.teachers = data.teachers;
      model.canReplace = data.can_replace;
      if (data.can_replace && !reasonsBox.firstChild) reasonsBox.append(reasonsSection(data.school_id));
      if (!calendarBox.firstChild) calendarBox.append(calendarSection(data.school_id));
      alerts.load(data.school_id, data.date.slice(0, 7));
      closedLine.hidden = !data.closed;
      closedLine.textContent = data.closed ? `Pas de cours ce jour : ${data.closed}. Aucun rappel ni retard.` : '';
      model.pending = new Map(data.pending.map((a) => [a.id, a]));
      if (!model.reasons.length) {
        const listed = await apiJson('GET', `/api/attendance/schools/${data.school_id}/reasons`)
          .catch(() => null); // as before: without the list, the page goes on
        if (listed) model.reasons = listed.reasons.filter((r) => r.active);
      }
      exportLink.href = `/api/attendance/export.csv?from=${data.date}&to=${data.date}`;
      replace(error);
      draw();
    } catch (err) { replace(error, h('p', {}, err.message)); }
  }
  conn.onConnect = load;
  conn.on('roll_update', (u) => {
    const row = model.rows.find((r) => (u.slot_id && r.slot_id === u.slot_id)
      || (u.study_hall_id && r.study_hall_id === u.study_hall_id));
    if (!row) { if (u.study_hall_id) load(); return; } // a study hall opened meanwhile
    const said = rollChange(row, u);
    changes.say(said);
    const cleared = u.state === 'done' || (u.state === 'in_progress' && row.alert === 'not_started');
    Object.assign(row, { roll_id: u.id, state: u.state, absent: u.absent, late: u.late,
      replacement_id: u.replacement_id, replacement_name: u.replacement_name ?? '' },
    cleared ? { alert: null, alert_label: null, overdue: false } : {});
    drawGrid();
    // The changed row shows it too (a short highlight), not only the screen reader's line.
    if (said) grid.querySelector(`tr[data-roll-id="${u.id}"]`)?.classList.add('just-changed');
  });
  conn.on('overdue', (o) => {
    const row = model.rows.find((r) => r.slot_id === o.slot_id);
    if (row && row.state === 'todo' && !row.overdue) {
      row.overdue = true;
      changes.say(`${rollName(row)} : appel non fait 10 min après le début.`);
      drawGrid();
    }
  });
  conn.on('roll_alert', (a) => {
    const row = model.rows.find((r) => (a.slot_id && r.slot_id === a.slot_id)
      || (a.study_hall_id && r.study_hall_id === a.study_hall_id));
    if (!row || row.state === 'done' || a.date !== model.date) return;
    if (row.alert !== a.alert) changes.say(`${rollName(row)} : ${a.alert_label}.`);
    Object.assign(row, { alert: a.alert, alert_label: a.alert_label, overdue: true });
    drawGrid();
  });
  conn.on('absence_update', (a) => {
    if (a.pending && !model.pending.has(a.id)) {
      changes.say(`Absence à traiter : ${a.student_name}${a.class_name ? ` (${a.class_name})` : ''}`
        + `, ${a.start}–${a.end}${a.reason_label ? `, motif donné : ${a.reason_label}` : ''}.`);
    }
    if (a.pending) model.pending.set(a.id, a); else model.pending.delete(a.id);
    drawPending();
    alerts.reload();
  });

  function drawGrid() {
    const late = model.rows.filter((r) => r.overdue).length;
    const done = model.rows.filter((r) => r.state === 'done').length;
    summary.textContent = `${done} appel(s) validé(s) sur ${model.rows.length}`
      + (late ? ` — ${count(late, 'appel')} en retard ou non validé${late > 1 ? 's' : ''}` : '');
    const watched = model.rows.filter((r) => r.alert);
    replace(watchList, watched.length ? watched.map((r) => h('li', {
      class: `watch-item alert-${r.alert}`, 'data-slot-id': r.slot_id ?? '', 'data-alert': r.alert },
    h('a', { href: r.study_hall_id ? `#/appel?permanence=${r.study_hall_id}&date=${model.date}`
      : `#/appel?slot=${r.slot_id}&date=${model.date}` },
    `${r.start} ${r.study_hall_id ? `Permanence (${r.room})` : `${r.class_name} — ${r.subject}`}`),
    ` — ${r.replacement_name || r.teacher_name} : `, h('strong', {}, r.alert_label)))
      : h('li', { class: 'empty' }, model.closed ? 'Pas de cours ce jour.' : 'Aucun appel en retard.'));
    keepPlace(grid, 'data-state', () => replace(grid, model.rows.map((r) => h('tr', {
      class: r.overdue ? 'overdue' : null, 'data-state': r.state, 'data-slot-id': r.slot_id ?? '',
      'data-roll-id': r.roll_id ?? '',
    },
    h('td', {}, `${r.start} – ${r.end}`),
    h('th', { scope: 'row' }, r.study_hall_id
      ? h('a', { href: `#/appel?permanence=${r.study_hall_id}&date=${model.date}` },
        `Permanence (${r.room})`) : r.class_name),
    h('td', {}, r.subject),
    h('td', {}, r.replacement_name ? `${r.replacement_name} (remplace ${r.teacher_name})` : r.teacher_name,
      model.canReplace && r.slot_id && r.state !== 'done' ? replaceMenu(r) : null),
    h('td', {}, h('span', { class: `badge state-${r.state}` }, ROLL_STATES[r.state]),
      r.overdue ? h('span', { class: 'badge overdue-badge', title: r.alert_label ?? '' },
        r.alert === 'not_started' ? 'En retard' : 'Non validé') : null),
    h('td', {}, String(r.absent)),
    h('td', {}, String(r.late))))), rowKey);
  }

  function replaceMenu(r) {
    const select = h('select', { 'aria-label': `Remplaçant·e pour ${r.class_name} à ${r.start}` },
      h('option', { value: '' }, 'Personne'),
      model.teachers.filter((t) => t.id !== r.teacher_id)
        .map((t) => h('option', { value: t.id, selected: t.id === r.replacement_id }, t.name)));
    return h('details', { class: 'replace-menu' },
      h('summary', { class: 'btn' }, 'Remplacer'),
      h('div', { class: 'replace-form' }, select,
        h('button', { type: 'button', class: 'btn btn-primary', onclick: async () => {
          try {
            await conn.call('replace', { slot_id: r.slot_id, date: model.date,
              teacher_id: select.value ? Number(select.value) : null });
            replace(error);
          } catch (err) { replace(error, h('p', {}, err.message)); }
        } }, 'Nommer')));
  }

  function drawPending() {
    const items = [...model.pending.values()];
    keepPlace(pendingList, 'data-event-id', () => replace(pendingList, items.length
      ? items.map(pendingItem) : h('li', { class: 'empty' }, 'Aucune absence à traiter.')));
  }

  // What the CPE types in a decision's comment survives live redraws of the list.
  const typed = new Map();

  function pendingItem(a) {
    const select = h('select', { 'aria-label': `Motif pour ${a.student_name}` },
      h('option', { value: '' }, a.reason_label ? `Motif proposé : ${a.reason_label}` : 'Choisir un motif…'),
      model.reasons.map((r) => h('option', { value: r.code }, r.label)));
    const comment = h('input', { type: 'text', maxlength: '300', class: 'decision-comment',
      'aria-label': `Commentaire de la décision pour ${a.student_name}`,
      placeholder: 'Commentaire (facultatif)', value: typed.get(a.id) ?? '',
      oninput: (e) => typed.set(a.id, e.target.value) });
    const decide = async (decision) => {
      try {
        await conn.call('decide', { event_id: a.id, decision,
          ...(select.value ? { reason_code: select.value } : {}),
          ...(comment.value.trim() ? { comment: comment.value.trim() } : {}) });
        typed.delete(a.id);
        model.pending.delete(a.id);
        drawPending();
        summary.textContent = `${a.student_name} : motif ${decision === 'accept' ? 'accepté' : 'refusé'}.`;
      } catch (err) { replace(error, h('p', {}, err.message)); }
    };
    const what = a.kind === 'late' ? `retard de ${a.minutes} min`
      : a.kind === 'left_early' ? `départ anticipé (${a.minutes} min avant la fin)` : 'absence';
    const proposals = a.proposals ?? [];
    return h('li', { class: 'pending', 'data-event-id': a.id },
      h('p', {}, h('strong', {}, a.student_name), ` (${a.class_name || 'classe'}) — ${what}, `,
        `${longDate(a.date)} ${a.start}–${a.end}. `, h('span', { class: 'muted' }, a.justification_label)),
      proposals.length ? h('ul', { class: 'proposals' }, proposals.map((x) => h('li', {
        class: 'proposal', 'data-proposal-id': x.id },
      h('span', {}, `${x.guardian_name} propose « ${x.reason_label} »`,
        x.comment ? ` : « ${x.comment} »` : '', ` (${when(x.created_at)})`,
        x.declaration_id ? ' — signalée à l\'avance' : ''),
      x.documents.map((d) => [' ', h('a', { class: 'doc-link', href: d.url, target: '_blank',
        rel: 'noopener' }, `Justificatif : ${d.filename}`)])))) : null,
      (a.decisions ?? []).length ? h('ul', { class: 'decisions' }, a.decisions.map((d) => h('li', {},
        `${d.accepted ? 'Accepté' : 'Refusé'} par ${d.by_name} (${when(d.decided_at)})`,
        d.comment ? ` : « ${d.comment} »` : ''))) : null,
      h('div', { class: 'pending-actions' }, select, comment,
        h('button', { type: 'button', class: 'btn btn-primary', onclick: () => decide('accept') }, 'Accepter'),
        h('button', { type: 'button', class: 'btn', onclick: () => decide('refuse') }, 'Refuser')));
  }

  function draw() {
    dateLine.textContent = longDate(model.date);
    drawGrid();
    drawPending();
  }

  return () => conn.close();
}

function rollName(r) {
  return `${r.study_hall_id ? `Permanence (${r.room})` : r.class_name}, ${r.start}`;
}

/** One sentence for what a live update changed in a row of the grid, or '' if nothing shows. */
function rollChange(row, u) {
  const said = [];
  if (u.state !== row.state) said.push(`appel ${ROLL_STATES[u.state].toLowerCase()}`);
  if (u.absent !== row.absent) said.push(`${u.absent} absent·e${u.absent > 1 ? 's' : ''}`);
  if (u.late !== row.late) said.push(`${u.late} en retard`);
  if ((u.replacement_name ?? '') !== (row.replacement_name ?? '')) {
    said.push(u.replacement_name ? `remplacement par ${u.replacement_name}` : 'remplacement retiré');
  }
  return said.length ? `${rollName(row)} : ${said.join(', ')}.` : '';
}

/** A row of the grid, named across redraws: its course, or its study hall's link. */
function rowKey(tr) {
  return tr.dataset.slotId || tr.querySelector('a[href]')?.getAttribute('href') || null;
}
