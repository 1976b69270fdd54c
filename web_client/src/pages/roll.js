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
import { count, when } from '../attendance/french.js';

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
  // A validated roll, or a past day's, changes only with a reason (kept in the history).
  const reasonInput = h('input', { type: 'text', id: 'correction-reason', maxlength: '300',
    class: 'reason-input', placeholder: 'ex. : élève arrivé après l\'appel, erreur de saisie' });
  const reasonBox = h('div', { class: 'correction-reason', hidden: true },
    h('label', { for: 'correction-reason' }, 'Motif de la correction (obligatoire)'), reasonInput);
  const historyBox = h('section', { class: 'roll-history', 'aria-labelledby': 'history-title',
    hidden: true });
  const historyButton = h('button', { type: 'button', class: 'btn', 'aria-expanded': 'false',
    onclick: () => toggleHistory() }, 'Historique de l\'appel');
  const header = h('header', { class: 'topbar' }, h('div', { class: 'topbar-inner' },
    h('a', { class: 'btn btn-light', href: '#/' }, 'Mon espace'), status));
  replace(root, header, h('main', { id: 'contenu', class: 'roll-page', tabindex: '-1' },
    title, meta, error, reasonBox, h('div', { class: 'roll-actions' }, allPresent,
      // « Valider » last: one Shift+Tab from the list (docs/accessibility.md).
      historyButton, validate), counts, message, help, list, historyBox));

  /** The reason to send, or null after asking for it (a correction without one). */
  function reason() {
    if (!model.roll?.needs_reason && model.roll?.state !== 'done') return undefined;
    const text = reasonInput.value.trim();
    if (!text) {
      replace(error, h('p', {}, 'Indiquez le motif de la correction avant de modifier l\'appel.'));
      reasonInput.focus();
      return null;
    }
    return text;
  }

  async function toggleHistory(force) {
    const open = force ?? historyBox.hidden;
    historyButton.setAttribute('aria-expanded', String(open));
    historyBox.hidden = !open;
    if (!open || !model.roll) return;
    try {
      const data = await conn.call('roll_history', { roll_id: model.roll.id });
      const what = (e) => {
        if (e.action === 'open') return 'Appel ouvert';
        if (e.action === 'validate') return 'Appel validé';
        if (e.action === 'replace') return e.reason;
        const before = e.before ? MARKS[e.before.state] : 'sans marque';
        const after = e.after ? MARKS[e.after.state] : '';
        return `${e.student_name} : ${before} → ${after}`
          + (e.after?.minutes ? ` (${e.after.minutes} min)` : '');
      };
      // « Tous présents » is one step for the reader, not one line per pupil.
      const entries = [];
      for (const e of data.entries) {
        const bulk = e.action === 'mark' && !e.before && e.after?.state === 'present' && !e.reason;
        const last = entries[entries.length - 1];
        if (bulk && last?.bulk && last.by === e.by && Math.abs(last.at - e.at) < 1) {
          last.count += 1;
          continue;
        }
        entries.push(bulk ? { ...e, bulk: true, count: 1 } : e);
      }
      for (const e of entries) {
        if (e.bulk && e.count > 1) {
          e.action = 'all_present';
          e.summary = `${e.count} élèves marqués présents`;
        }
      }
      const plain = what;
      const described = (e) => e.summary ?? plain(e);
      replace(historyBox, h('h2', { id: 'history-title' }, 'Historique de l\'appel'),
        entries.length ? h('ol', { class: 'history-list' }, entries.map((e) => h('li', {
          'data-action': e.action, class: e.reason && e.action !== 'replace' ? 'with-reason' : null },
        h('span', { class: 'history-when' }, when(e.at)), ' — ', h('strong', {}, e.by_name), ' : ',
        described(e), e.reason && e.action !== 'replace'
          ? h('span', { class: 'history-reason' }, ` — motif : « ${e.reason} »`) : null)))
          : h('p', { class: 'empty' }, 'Rien pour l\'instant.'));
    } catch (err) { fail(err); }
  }

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
      // « Historique » opened before the roll had arrived (a slow network): fill it now.
      if (!historyBox.hidden) toggleHistory(true);
    } catch (err) { fail(err); }
  }
  conn.onConnect = open; // again after a reconnection: the stored roll is the truth
  conn.on('marks', (msg) => {
    if (msg.roll_id !== model.roll?.id) return;
    if (!historyBox.hidden) toggleHistory(true);
    if (msg.marks.some((m) => !model.students.some((s) => s.id === m.student_id))) {
      open(); // a pupil added to a study hall from another screen: the stored roll has the name
      return;
    }
    for (const m of msg.marks) model.marks.set(m.student_id, m);
    // An older event (arriving after a newer answer) never moves the roll back.
    if (!(msg.version < (model.roll.version ?? 0))) {
      model.roll.state = msg.state;
      model.roll.version = msg.version;
    }
    draw();
  });
  conn.on('roll_state', (summary) => {
    if (summary.id !== model.roll?.id || summary.version < (model.roll.version ?? 0)) return;
    Object.assign(model.roll, summary);
    drawHeader();
  });

  async function act(event) {
    if (!model.roll) return;
    const why = reason();
    if (why === null) return;
    // One roll-wide step at a time: « Valider » right after « Tous présents » waits for it.
    allPresent.disabled = true;
    validate.disabled = true;
    try {
      const ack = await conn.call(event, { roll_id: model.roll.id, ...(why ? { reason: why } : {}) });
      model.roll.state = ack.state;
      model.roll.version = Math.max(model.roll.version ?? 0, ack.version ?? 0);
      if (event === 'validate') {
        say(`Appel validé. ${ack.notified ? `${ack.notified} responsable(s) prévenu(s).` : ''}`);
      }
      replace(error);
      drawHeader();
      // « Valider » disappears once the roll is validated: focus goes to what it did.
      if (event === 'validate') message.focus();
    } catch (err) { fail(err); } finally {
      allPresent.disabled = false;
      validate.disabled = false;
    }
  }

  async function setMark(student, state, extra = {}) {
    // A change of mark keeps the comment already written, unless a new one is given.
    const item = { student_id: student.id, state,
      comment: model.marks.get(student.id)?.comment ?? '', ...extra };
    const why = reason();
    if (why === null) return false;
    try {
      const ack = await conn.call('mark', { roll_id: model.roll.id, marks: [item],
        ...(why ? { reason: why } : {}) });
      model.marks.set(student.id, item);
      if (!(ack.version < (model.roll.version ?? 0))) {
        model.roll.state = ack.state;
        model.roll.version = ack.version;
      }
      replace(error);
      say(`${student.name} : ${MARKS[state].toLowerCase()}${extra.minutes ? ` (${extra.minutes} min)` : ''}.`);
      draw();
      if (!historyBox.hidden) toggleHistory(true);
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
    validate.hidden = r.state === 'done' || r.read_only;
    allPresent.hidden = r.state === 'done' || r.kind === 'study_hall' || r.read_only;
    reasonBox.hidden = r.read_only || !(r.needs_reason || r.state === 'done');
    list.classList.toggle('read-only', Boolean(r.read_only));
    const n = { present: 0, absent: 0, late: 0, other: 0, none: 0 };
    for (const s of model.students) {
      const m = model.marks.get(s.id);
      if (!m) n.none += 1; else if (m.state in n) n[m.state] += 1; else n.other += 1;
    }
    counts.textContent = `${count(n.present, 'présent·e', 'présent·es')}, `
      + `${count(n.absent, 'absent·e', 'absent·es')}, ${n.late} en retard`
      + (n.other ? `, ${count(n.other, 'autre')}` : '') + (n.none ? ` — ${n.none} sans marque` : '');
  }

  function draw() {
    drawHeader();
    const focused = document.activeElement?.dataset?.commentFor;
    const kept = rememberFocus(list);
    replace(list, model.students.map((s) => studentRow(s, model.marks.get(s.id), setMark, {
      readOnly: Boolean(model.roll.read_only),
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
    disabled: comments.readOnly,
  }, h('span', { class: 'student-name' }, student.name),
  student.declared ? h('span', { class: 'badge declared' }, student.declared.label) : null,
  h('span', { class: 'student-mark' }, state ? MARKS[state] : 'Sans marque',
    timed ? ` (${mark.minutes} min)` : '', mark?.must_attend ? ' (reste en cours)' : ''),
  mark?.comment ? h('span', { class: 'student-comment' }, `« ${mark.comment} »`) : null);
  const more = h('select', { class: 'more', 'aria-label': `Autre marque pour ${student.name}`,
    disabled: comments.readOnly,
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
