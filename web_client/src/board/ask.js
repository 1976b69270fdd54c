// A question in a modal <dialog> (not window.confirm: it blocks the page, and a TBI's browser
// may hide it): « Terminer la séance ? », « Nouveau titre ». Resolves with true / the text,
// or null when the teacher gives up.
import { h } from '../dom.js';

export function ask(parent, { title, text = '', confirm, danger = false, input = null }) {
  return new Promise((resolve) => {
    const field = input ? h('input', { type: 'text', class: 'ask-input', value: input.value ?? '',
      maxlength: input.maxLength ?? 120, 'aria-label': input.label, required: true }) : null;
    const no = h('button', { type: 'button', class: 'btn', onclick: () => finish(null) }, 'Annuler');
    const yes = h('button', { type: 'submit', class: `btn ${danger ? 'btn-danger' : 'btn-primary'}` }, confirm);
    const form = h('form', { method: 'dialog', onsubmit: (e) => {
      e.preventDefault();
      if (field && !field.value.trim()) { field.focus(); return; }
      finish(field ? field.value.trim() : true);
    } },
    h('h2', { id: 'ask-title' }, title),
    text ? h('p', {}, text) : null,
    field,
    h('div', { class: 'dialog-actions' }, no, yes));
    const dialog = h('dialog', { class: 'pen-dialog ask-dialog', 'aria-labelledby': 'ask-title' }, form);
    let done = false;
    function finish(value) {
      if (done) return;
      done = true;
      dialog.close();
      dialog.remove();
      resolve(value);
    }
    dialog.addEventListener('cancel', () => finish(null));
    parent.append(dialog);
    dialog.showModal();
    (field ?? yes).focus();
    field?.select();
  });
}
