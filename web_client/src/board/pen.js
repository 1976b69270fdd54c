// The teacher hands the pen (« le stylet », as the server says): to nobody, to the whole class,
// or to chosen students
// (the class list comes from GET /api/classes/{class_id}/students).
import { api } from '../api.js';
import { h, replace } from '../dom.js';
import { icon } from './icons.js';

/** Who holds the pen, in words. */
export function penText(pen, names = new Map()) {
  if (pen === 'everyone') return 'Stylet : toute la classe';
  if (Array.isArray(pen) && pen.length) {
    const who = pen.map((id) => names.get(String(id))).filter(Boolean);
    if (who.length && who.length <= 3) return `Stylet : ${who.join(', ')}`;
    return `Stylet : ${pen.length} élève${pen.length > 1 ? 's' : ''}`;
  }
  return "Stylet : l'enseignant·e seulement";
}

/**
 * A button that opens the dialog, and the dialog. `grant(pen)` sends the choice and
 * resolves with the ack; `current()` is the pen as it is now.
 */
export function penControl({ classId, current, grant, names }) {
  const error = h('div', { class: 'alert', role: 'alert' });
  const list = h('div', { class: 'pen-students' });
  const radio = (value, label) => h('label', { class: 'choice' },
    h('input', { type: 'radio', name: 'pen-mode', value }), label);
  const form = h('form', { method: 'dialog', class: 'pen-form' },
    h('h2', { id: 'pen-title' }, 'Donner le stylet'),
    h('fieldset', {},
      h('legend', {}, 'Qui peut écrire au tableau ?'),
      radio('none', "Personne (l'enseignant·e seulement)"),
      radio('everyone', 'Toute la classe'),
      radio('some', 'Élèves choisis')),
    h('fieldset', { class: 'pen-chosen' }, h('legend', {}, 'Élèves choisis'), list),
    error,
    h('div', { class: 'dialog-actions' },
      h('button', { type: 'button', class: 'btn', onclick: () => dialog.close() }, 'Annuler'),
      h('button', { type: 'submit', class: 'btn btn-primary' }, 'Valider')));
  const dialog = h('dialog', { class: 'pen-dialog', 'aria-labelledby': 'pen-title' }, form);
  let loaded = false;

  let loading = null;
  function loadStudents() {
    if (loaded) return Promise.resolve();
    loading ??= fetchStudents();
    return loading;
  }

  async function fetchStudents() {
    replace(list, h('p', { class: 'muted' }, 'Chargement de la classe…'));
    try {
      const { students } = await api.classStudents(classId);
      loaded = true;
      for (const s of students) names.set(String(s.id), s.name);
      replace(list, students.length
        ? students.map((s) => h('label', { class: 'choice' },
          h('input', { type: 'checkbox', name: 'pen-student', value: String(s.id) }), s.name))
        : h('p', { class: 'empty' }, 'Aucun élève dans cette classe.'));
      syncChecks();
    } catch (err) {
      replace(list, h('p', { class: 'alert' }, err.message));
    } finally {
      loading = null;
    }
  }

  function syncChecks() {
    const pen = current();
    const chosen = new Set(Array.isArray(pen) ? pen.map(String) : []);
    for (const box of list.querySelectorAll('input[type=checkbox]')) box.checked = chosen.has(box.value);
  }

  function open() {
    const pen = current();
    const mode = pen === 'everyone' ? 'everyone' : Array.isArray(pen) && pen.length ? 'some' : 'none';
    for (const r of form.querySelectorAll('input[type=radio]')) r.checked = r.value === mode;
    replace(error);
    syncChecks();
    dialog.showModal();
    loadStudents();
  }

  list.addEventListener('change', () => {
    form.querySelector('input[value=some]').checked = true;
  });

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const mode = form.querySelector('input[name=pen-mode]:checked')?.value ?? 'none';
    let pen = mode;
    if (mode === 'some') {
      pen = [...list.querySelectorAll('input:checked')].map((b) => {
        const n = Number(b.value);
        return Number.isInteger(n) ? n : b.value;
      });
      if (!pen.length) { replace(error, h('p', {}, 'Cochez au moins un·e élève.')); return; }
    }
    const ack = await grant(pen);
    if (ack.ok) dialog.close();
    else replace(error, h('p', {}, ack.error?.message ?? 'Refusé.'));
  });

  const button = h('button', { type: 'button', class: 'btn tool pen-button', onclick: open },
    icon('pen_hand'), h('span', { class: 'label-wide' }, 'Donner le stylet'));
  return { button, dialog, load: loadStudents };
}
