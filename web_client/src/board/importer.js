// Files onto the board: a PDF (or a photo, as a page) becomes pages through
// `POST /api/boards/{id}/import`, with a progress bar (the upload, then the server's `import`
// events as each page is rendered); an image is inserted on the current page as an item
// through `POST /api/boards/{id}/images`, then selected so it can be moved and resized.
// Both from a button, by dropping files on the board, or by pasting (Ctrl+V).
import { apiUpload } from '../api.js';
import { h } from '../dom.js';

const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/webp', 'image/gif'];
const MAX_SIDE = 2400; // a phone photo is reduced to this before it is sent as an item

export const isPdf = (file) => file.type === 'application/pdf' || /\.pdf$/i.test(file.name ?? '');
export const isImage = (file) => IMAGE_TYPES.includes(file.type);

/** The progress bar over the board (one import at a time). */
export function importProgress() {
  const bar = h('progress', { max: '100', value: '0', 'aria-label': 'Import en cours' });
  const label = h('span', { class: 'import-label' });
  const el = h('div', { class: 'import-progress', role: 'status', hidden: true }, label, bar);
  let hideTimer = 0;
  return {
    el,
    show(text, fraction) {
      clearTimeout(hideTimer);
      el.hidden = false;
      label.textContent = text;
      if (fraction === null) bar.removeAttribute('value');
      else bar.value = Math.round(Math.max(0, Math.min(1, fraction)) * 100);
    },
    done(text) {
      label.textContent = text;
      bar.value = 100;
      hideTimer = setTimeout(() => { el.hidden = true; }, 2500);
    },
    hide() { el.hidden = true; },
  };
}

/** POST the file as multipart with upload progress (fetch has none): the parsed answer. */
export function uploadPages(boardId, file, onUpload) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/boards/${encodeURIComponent(boardId)}/import`);
    xhr.responseType = 'json';
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onUpload(e.loaded / e.total); };
    xhr.onload = () => resolve({ status: xhr.status, body: xhr.response });
    xhr.onerror = () => resolve({ status: 0, body: { error: {
      message: 'Le serveur ne répond pas. Vérifiez la connexion puis réessayez.' } } });
    const form = new FormData();
    form.append('file', file, file.name || 'document');
    xhr.send(form);
  });
}

/** A photo from a phone may be 12 Mpx: reduced (turned as its EXIF says) before sending. */
async function shrink(file, maxBytes) {
  if (file.size <= maxBytes * 0.9 && file.type !== 'image/jpeg') return file;
  let bitmap;
  try {
    bitmap = await createImageBitmap(file, { imageOrientation: 'from-image' });
  } catch {
    return file;
  }
  const k = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  if (k === 1 && file.size <= maxBytes * 0.9) { bitmap.close?.(); return file; }
  const canvas = document.createElement('canvas');
  canvas.width = Math.round(bitmap.width * k);
  canvas.height = Math.round(bitmap.height * k);
  const c = canvas.getContext('2d');
  c.fillStyle = '#fff';
  c.fillRect(0, 0, canvas.width, canvas.height);
  c.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close?.();
  const blob = await new Promise((done) => canvas.toBlob(done, 'image/jpeg', 0.88));
  return blob ?? file;
}

/** The image's natural size (to keep its proportions on the board). */
function naturalSize(src) {
  return new Promise((resolve) => {
    const img = new Image();
    img.onload = () => resolve([img.naturalWidth || 1, img.naturalHeight || 1]);
    img.onerror = () => resolve([4, 3]);
    img.src = src;
  });
}

/** Upload `file` as a board image: its `src`, or throws an ApiError with a French message. */
export async function uploadImage(boardId, file, maxBytes) {
  const body = await shrink(file, maxBytes);
  if (body.size > maxBytes) {
    throw new Error(`Image trop lourde (${Math.floor(maxBytes / (1024 * 1024))} Mio au plus).`);
  }
  const data = await apiUpload(`/api/boards/${encodeURIComponent(boardId)}/images`, body,
    body.type || file.type);
  return { src: data.src, size: await naturalSize(data.src) };
}

/** A hidden file input, opened by a button: `pick(accept)` resolves with the chosen file. */
export function filePicker() {
  const input = h('input', { type: 'file', hidden: true }); // opened by its button
  let resolver = null;
  input.addEventListener('change', () => {
    const file = input.files?.[0] ?? null;
    input.value = '';
    resolver?.(file);
    resolver = null;
  });
  return {
    el: input,
    pick(accept) {
      input.accept = accept;
      return new Promise((resolve) => { resolver = resolve; input.click(); });
    },
  };
}

/**
 * Drops and pastes anywhere on the board page: `on.files(list)` gets the files (PDFs and
 * images). Returns a function that removes the listeners.
 */
export function acceptFiles(target, on) {
  const hasFiles = (e) => [...(e.dataTransfer?.types ?? [])].includes('Files');
  const over = (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    target.classList.add('dropping');
  };
  const leave = (e) => {
    if (e.target === target || !target.contains(e.relatedTarget)) target.classList.remove('dropping');
  };
  const drop = (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    target.classList.remove('dropping');
    const files = [...(e.dataTransfer.files ?? [])];
    if (files.length) on.files(files, { clientX: e.clientX, clientY: e.clientY });
  };
  const paste = (e) => {
    if (e.target.closest?.('input, textarea, [contenteditable]')) return;
    const files = [...(e.clipboardData?.files ?? [])];
    if (!files.length) return;
    e.preventDefault();
    on.files(files, null);
  };
  target.addEventListener('dragover', over);
  target.addEventListener('dragleave', leave);
  target.addEventListener('drop', drop);
  document.addEventListener('paste', paste);
  return () => {
    target.removeEventListener('dragover', over);
    target.removeEventListener('dragleave', leave);
    target.removeEventListener('drop', drop);
    document.removeEventListener('paste', paste);
  };
}
