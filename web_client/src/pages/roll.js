// « Appel » (#/appel?slot=<id>&date=…, or ?permanence=<id>): the class list, one tap per
// student (présent ↔ absent), « Tous présents » then the exceptions, then « Valider »; a
// comment per mark (« Commentaire »). Works the same on a phone and on the TBI; other
// screens of the same roll follow live. On a study hall (permanence) the list is whoever
// was added: « Ajouter un élève présent » picks a class, then the pupil.
import { h, replace, setTitle } from '../dom.js';
import { AttendanceConnection, MARKS, ROLL_STATES, apiJson } from '../attendance/connection.js';
import { attachRollKeys, rememberFocus, restoreFocus } from '../attendance/roll-keys.js';
import { longDate } from '../dates.js';
import { liveStatus } from '../socket.js';

export function renderRoll(root, { slotId, hallId, date }) {
  setTitle("Appel");
  const status = liveStatus();
  const conn = new AttendanceConnection(status);
  // `editing`: the rows whose comment box is open, and what was typed there (kept across
  // redraws, which live marks from other screens cause).
  const model = { roll: null, students: [], marks: new Map(), editing: new Map() };
  const title = h('h1', { class: 'page-title', tabindex: '-1' }, 'Appel');
  const meta = h('p', { class: 'roll-meta' });
  const message = h('p', { class: 'roll-message', role: 'status', 'aria-live': 'polite',
    tabindex: '-1' });
  const error = h('div', { class: 'alert', role: 'alert' });
  // Not a live region: each mark is said once by the status line, the totals are not re-read.
  const counts = h('p', { class: 'roll-counts' });
  // Always shown, short: hiding it until the keyboard is used would move the list under a
  // finger in the middle of a tap.
  const help = h('p', { class: 'roll-help muted', id: 'roll-help' }, 'Clavier : Tab, '
    + "d'un·e élève à l'autre ; Espace, absent·e ou présent·e ; ← →, autres marques et "
    + 'commentaire ; ↑ ↓, élève précédent·e ou suivant·e.');
  const list = h('ul', { class: 'roll-list', 'aria-label': 'Élèves', 'aria-describedby': 'roll-help' });
  attachRollKeys(list);
  const allPresent = h('button', { type: 'button', class: 'btn', onclick: () => act('all_present') },
    'Tous présents');
  const validate = h('button', { type: 'button', class: 'btn btn-primary', onclick: () => act('validate') },
    "Valider l'appel");
  const header = h('header', { class: 'topbar' }, h('div', { class: 'topbar-inner' },
    h('a', { class: 'btn btn-light', href: '#/' }, 'Mon espace'), status));
  replace(root, header, h('main', { id: 'contenu', class: 'roll-page', tabindex: '-1' },
    title, meta, error, h('div', { class: 'roll-actions' }, allPresent, validate), counts,
    message, help, list));

  const say = (text) => { message.textContent = text; };
  const fail = (err) => replace(error, h('p', {}, err.message));

  async function open() {
    try {
      const data = await conn.call('open_roll', {
        ...(slotId ? { slot_id: slotId } : { study_hall_id: hallId }), ...(date ? { date } : {}),
      });
      model.roll = data.roll;
      model.students = data.students;
      model.marks = new Map(data.students.filter((s) => s.mark).map((s) => [s.id, s.mark]));
      replace(error);
      draw();
    } catch (err) { fail(err); }
  }
  conn.onConnect = open; // again after a reconnection: the stored roll is the truth
  conn.on('marks', (msg) => {
    if (msg.roll_id !== model.roll?.id) return;
    if (msg.marks.some((m) => !model.students.some((s) => s.id === m.student_id))) {
      open(); // a pupil added to a study hall from another screen: the stored roll has the name
      return;
    }
    for (const m of msg.marks) model.marks.set(m.student_id, m);
    model.roll.state = msg.state;
    draw();
  });
  conn.on('roll_state', (summary) => {
    if (summary.id !== model.roll?.id) return;
    Object.assign(model.roll, summary);
    drawHeader();
  });

  async function act(event) {
    if (!model.roll) return;
    try {
      const ack = await conn.call(event, { roll_id: model.roll.id });
      model.roll.state = ack.state;
      if (event === 'validate') {
        say(`Appel validé. ${ack.notified ? `${ack.notified} responsable(s) prévenu(s).` : ''}`);
      }
      replace(error);
      drawHeader();
      // « Valider » disappears once the roll is validated: focus goes to what it did.
      if (event === 'validate') message.focus();
    } catch (err) { fail(err); }
  }

  async function setMark(student, state, extra = {}) {
    // A change of mark keeps the comment already written, unless a new one is given.
    const item = { student_id: student.id, state,
      comment: model.marks.get(student.id)?.comment ?? '', ...extra };
    try {
      const ack = await conn.call('mark', { roll_id: model.roll.id, marks: [item] });
      model.marks.set(student.id, item);
      model.roll.state = ack.state;
      replace(error);
      say(`${student.name} : ${MARKS[state].toLowerCase()}${extra.minutes ? ` (${extra.minutes} min)` : ''}.`);
      draw();
      return true;
    } catch (err) { fail(err); return false; }
  }

  async function saveComment(student, text) {
    const m = model.marks.get(student.id);
    if (!m) return;
    const extra = { comment: text.trim() };
    if (m.minutes) extra.minutes = m.minutes;
    if (m.must_attend) extra.must_attend = true;
    model.editing.delete(student.id);
    if (!(await setMark(student, m.state, extra))) model.editing.set(student.id, text);
    else say(extra.comment ? `Commentaire enregistré pour ${student.name}.`
      : `Commentaire retiré pour ${student.name}.`);
    draw();
  }

  function drawHeader() {
    const r = model.roll;
    const where = r.kind === 'study_hall' ? (r.subject || 'Permanence') : `${r.class_name} — ${r.subject}`;
    title.textContent = `Appel : ${where}`;
    setTitle(`Appel ${where}`);
    meta.textContent = `${longDate(r.date)}, ${r.start} – ${r.end} · ${ROLL_STATES[r.state]}`;
    meta.dataset.state = r.state;
    validate.hidden = r.state === 'done';
    allPresent.hidden = r.state === 'done' || r.kind === 'study_hall';
    const n = { present: 0, absent: 0, late: 0, other: 0, none: 0 };
    for (const s of model.students) {
      const m = model.marks.get(s.id);
      if (!m) n.none += 1; else if (m.state in n) n[m.state] += 1; else n.other += 1;
    }
    counts.textContent = `${n.present} présent·es, ${n.absent} absent·es, ${n.late} en retard`
      + (n.other ? `, ${n.other} autre(s)` : '') + (n.none ? ` — ${n.none} sans marque` : '');
  }

  function draw() {
    drawHeader();
    const focused = document.activeElement?.dataset?.commentFor;
    const kept = rememberFocus(list);
    replace(list, model.students.map((s) => studentRow(s, model.marks.get(s.id), setMark, {
      editing: model.editing,
      toggle: () => {
        if (model.editing.has(s.id)) model.editing.delete(s.id);
        else model.editing.set(s.id, model.marks.get(s.id)?.comment ?? '');
        draw();
        list.querySelector(`[data-comment-for="${s.id}"]`)?.focus();
      },
      save: (text) => saveComment(s, text),
    })));
    restoreFocus(list, kept);
    if (focused) list.querySelector(`[data-comment-for="${focused}"]`)?.focus();
    drawAdd();
  }

  // Study hall: add a pupil who came in (any class of the school), marked present.
  const addBox = h('div', { class: 'hall-add' });
  list.after(addBox);
  let classes = null;
  async function drawAdd() {
    if (model.roll?.kind !== 'study_hall' || model.roll.state === 'done') { replace(addBox); return; }
    if (addBox.firstChild) return;
    if (classes === null) {
      try { classes = (await apiJson('GET', '/api/classes')).classes; } catch { classes = []; }
    }
    const pupils = h('select', { 'aria-label': 'Élève', disabled: true },
      h('option', { value: '' }, 'Élève…'));
    const klass = h('select', { 'aria-label': 'Classe', onchange: async (e) => {
      replace(pupils, h('option', { value: '' }, 'Élève…'));
      pupils.disabled = true;
      if (!e.target.value) return;
      try {
        const data = await apiJson('GET', `/api/classes/${e.target.value}/students`);
        pupils.append(...data.students.map((p) => h('option', { value: p.id }, p.name)));
        pupils.disabled = false;
      } catch (err) { fail(err); }
    } }, h('option', { value: '' }, 'Classe…'),
    classes.map((c) => h('option', { value: c.id }, c.name)));
    replace(addBox, h('h2', {}, 'Ajouter un élève présent'), h('div', { class: 'hall-add-form' },
      klass, pupils, h('button', { type: 'button', class: 'btn btn-primary', onclick: async () => {
        const id = Number(pupils.value);
        if (!id) { fail(new Error('Choisissez une classe puis un élève.')); return; }
        const name = pupils.selectedOptions[0].textContent;
        if (!model.students.some((s) => s.id === id)) model.students.push({ id, name, mark: null });
        if (!(await setMark({ id, name }, 'present'))) {
          model.students = model.students.filter((s) => s.id !== id || model.marks.has(id));
          draw();
        }
      } }, 'Ajouter')));
  }

  return () => conn.close();
}

function studentRow(student, mark, setMark, comments) {
  const state = mark?.state ?? null;
  const timed = state === 'late' || state === 'left_early';
  const toggle = h('button', {
    type: 'button', class: 'btn student-toggle', 'data-state': state ?? 'none',
    'aria-pressed': state === 'absent' ? 'true' : 'false',
    onclick: () => setMark(student, state === 'absent' ? 'present' : 'absent'),
  }, h('span', { class: 'student-name' }, student.name),
  h('span', { class: 'student-mark' }, state ? MARKS[state] : 'Sans marque',
    timed ? ` (${mark.minutes} min)` : '', mark?.must_attend ? ' (reste en cours)' : ''),
  mark?.comment ? h('span', { class: 'student-comment' }, `« ${mark.comment} »`) : null);
  const more = h('select', { class: 'more', 'aria-label': `Autre marque pour ${student.name}`,
    onchange: (e) => {
      const value = e.target.value;
      e.target.value = '';
      if (!value) return;
      if (value === 'exempted_stays') { setMark(student, 'exempted', { must_attend: true }); return; }
      const extra = value === 'late' || value === 'left_early' ? { minutes: mark?.minutes ?? 5 } : {};
      setMark(student, value, extra);
    } },
  h('option', { value: '' }, 'Autre…'),
  ['present', 'absent', 'late', 'left_early'].map((k) => h('option', { value: k }, MARKS[k])),
  h('option', { value: 'exempted_stays' }, 'Dispensé·e, reste en cours'),
  h('option', { value: 'exempted' }, 'Dispensé·e, peut partir'));
  // Minutes only where they mean something: a lateness or an early departure.
  const minutes = timed ? h('input', { type: 'number', min: '1', max: '240', inputmode: 'numeric',
    class: 'minutes', value: mark.minutes, 'aria-label': `Minutes pour ${student.name}`,
    onchange: (e) => {
      const n = Number(e.target.value);
      if (n >= 1 && n <= 240 && n !== mark.minutes) setMark(student, state, { minutes: n });
    } }) : null;
  // A comment on the mark (« oubli du carnet », « arrivé avec un mot »): once marked.
  const open = comments.editing.has(student.id);
  // Its name is its visible label, « Commentaire », then whose (WCAG 2.5.3); on a phone the
  // pencil alone shows, and the tooltip says the word.
  const noteButton = state ? h('button', { type: 'button', class: 'btn note-toggle',
    'aria-expanded': open ? 'true' : 'false', title: 'Commentaire',
    onclick: comments.toggle }, h('span', { 'aria-hidden': 'true' }, '✎'),
  h('span', { class: 'note-label' }, 'Commentaire'),
  h('span', { class: 'visually-hidden' }, ` pour ${student.name}`)) : null;
  let form = null;
  if (open && state) {
    const box = h('input', { type: 'text', maxlength: '300', class: 'comment-input',
      'data-comment-for': student.id, value: comments.editing.get(student.id),
      'aria-label': `Texte du commentaire pour ${student.name}`,
      placeholder: 'Commentaire (300 caractères au plus)',
      oninput: (e) => comments.editing.set(student.id, e.target.value),
      onkeydown: (e) => { if (e.key === 'Enter') { e.preventDefault(); comments.save(box.value); } } });
    form = h('div', { class: 'comment-form' }, box,
      h('button', { type: 'button', class: 'btn btn-primary',
        onclick: () => comments.save(box.value) }, 'Enregistrer'),
      h('button', { type: 'button', class: 'btn', onclick: comments.toggle }, 'Annuler'));
  }
  return h('li', { class: 'student-row', 'data-student-id': student.id }, toggle, more, minutes,
    noteButton, form);
}
