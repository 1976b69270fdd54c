// The editor's toolbar: undo/redo, headings, bold/italic, lists, links, images (uploaded from
// the device, or by address). Buttons say their state with aria-pressed so a screen reader
// user knows what is on; undo/redo are disabled when there is nothing to undo or redo.
import { h } from '../dom.js';
import { IMAGE_TYPES } from './images.js';

const SAFE_URL = /^(https?:\/\/|\/|mailto:)/i;

export function toolbar(editor, { onError, onImages }) {
  const buttons = [];
  const disabling = [];
  const button = (label, title, run, isActive) => {
    // mousedown must not take the focus from the text: the next keystroke stays in it.
    const b = h('button', { type: 'button', class: 'tool', title, 'aria-pressed': 'false',
      onmousedown: (e) => e.preventDefault(),
      onclick: () => { run(); editor.commands.focus(); } }, label);
    buttons.push([b, isActive]);
    return b;
  };
  const chain = () => editor.chain().focus();
  const askUrl = (question) => {
    const url = (window.prompt(question) ?? '').trim();
    if (!url) return null;
    if (!SAFE_URL.test(url)) { onError('Adresse refusée : elle doit commencer par https://, http:// ou /.'); return null; }
    return url;
  };
  // Undo/redo: the Collaboration extension's Yjs undo manager, so only one's own edits are
  // undone, never a colleague's.
  const history = (label, title, run, can) => {
    const b = button(label, title, run, () => false);
    b.removeAttribute('aria-pressed');
    disabling.push([b, can]);
    return b;
  };
  const picker = h('input', { type: 'file', accept: IMAGE_TYPES.join(','), multiple: true,
    hidden: true, tabindex: '-1', 'aria-hidden': 'true',
    onchange: () => { onImages?.([...picker.files]); picker.value = ''; } });
  const bar = h('div', { class: 'doc-toolbar', role: 'toolbar', 'aria-label': 'Mise en forme' },
    history('↶ Annuler', 'Annuler (Ctrl+Z)', () => editor.commands.undo(), () => editor.can().undo()),
    history('↷ Rétablir', 'Rétablir (Ctrl+Maj+Z)', () => editor.commands.redo(), () => editor.can().redo()),
    button('Titre 1', 'Titre 1', () => chain().toggleHeading({ level: 1 }).run(),
      () => editor.isActive('heading', { level: 1 })),
    button('Titre 2', 'Titre 2', () => chain().toggleHeading({ level: 2 }).run(),
      () => editor.isActive('heading', { level: 2 })),
    button('Paragraphe', 'Paragraphe', () => chain().setParagraph().run(), () => editor.isActive('paragraph')),
    button('Gras', 'Gras', () => chain().toggleBold().run(), () => editor.isActive('bold')),
    button('Italique', 'Italique', () => chain().toggleItalic().run(), () => editor.isActive('italic')),
    button('Liste à puces', 'Liste à puces', () => chain().toggleBulletList().run(),
      () => editor.isActive('bulletList')),
    button('Liste numérotée', 'Liste numérotée', () => chain().toggleOrderedList().run(),
      () => editor.isActive('orderedList')),
    button('Lien', 'Lien', () => {
      if (editor.isActive('link')) { chain().unsetLink().run(); return; }
      const href = askUrl('Adresse du lien :');
      if (href) chain().extendMarkRange('link').setLink({ href }).run();
    }, () => editor.isActive('link')),
    button('Image', "Insérer une image de l'appareil", () => picker.click(), () => false),
    button('Image (adresse)', "Insérer une image par son adresse", () => {
      const src = askUrl("Adresse de l'image :");
      if (src) chain().setImage({ src, alt: '' }).run();
    }, () => false),
    picker);
  for (const [b] of buttons) if (!disabling.some(([d]) => d === b)) b.setAttribute('aria-pressed', 'false');
  const refresh = () => {
    for (const [b, isActive] of buttons) {
      if (!disabling.some(([d]) => d === b)) b.setAttribute('aria-pressed', String(Boolean(isActive())));
    }
    for (const [b, can] of disabling) {
      let ok = false;
      try { ok = can(); } catch { ok = false; }
      b.disabled = !ok;
    }
  };
  refresh();
  editor.on('transaction', refresh);
  editor.on('selectionUpdate', refresh);
  return bar;
}
