// The editor's toolbar: headings, bold/italic, lists, links, images. Buttons say their state
// with aria-pressed so a screen reader user knows what is on.
import { h } from '../dom.js';

const SAFE_URL = /^(https?:\/\/|\/|mailto:)/i;

export function toolbar(editor, { onError }) {
  const buttons = [];
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
  const bar = h('div', { class: 'doc-toolbar', role: 'toolbar', 'aria-label': 'Mise en forme' },
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
    button('Image', 'Image', () => {
      const src = askUrl("Adresse de l'image :");
      if (src) chain().setImage({ src, alt: '' }).run();
    }, () => false));
  const refresh = () => {
    for (const [b, isActive] of buttons) b.setAttribute('aria-pressed', String(Boolean(isActive())));
  };
  editor.on('transaction', refresh);
  editor.on('selectionUpdate', refresh);
  return bar;
}
