// « Tableau » (#/boards/<id>): the live classroom board of docs/boards.md.
// The teacher draws, changes pages, hands the pen; students follow the teacher's page and
// zoom, and draw when given the pen. Returns a function that closes the board.
import { boardChat } from '../board/chat.js';
import { h, replace, setTitle } from '../dom.js';
import { BoardConnection } from '../board/connection.js';
import { followersPanel } from '../board/followers.js';
import { preload } from '../board/draw.js';
import { PAGE_H, PAGE_W } from '../board/geometry.js';
import { newId } from '../board/ids.js';
import { attachInput } from '../board/input.js';
import { pageBar } from '../board/pagebar.js';
import { penControl, penText } from '../board/pen.js';
import { BoardState } from '../board/state.js';
import { COLOURS, drawingTools } from '../board/toolbar.js';
import { icon } from '../board/icons.js';
import { BoardView } from '../board/view.js';
import { liveStatus } from '../socket.js';
import { textTool } from '../board/text.js';
import { ask } from '../board/ask.js';
import { acceptFiles, filePicker, importProgress, isImage, isPdf, uploadImage, uploadPages }
  from '../board/importer.js';
import { lazyInstruments } from '../board/instruments-lazy.js';
import { pagesPanel } from '../board/pages-panel.js';
import { selectionTool } from '../board/selection.js';
import { attachBoardKeys } from '../board/keyboard.js';

const ZOOMS = [1, 1.5, 2, 3, 4];
const FONT_SIZES = { 3: 32, 6: 48, 12: 72 };
const MESSAGE_MS = 8000;
const VIEW_EVERY_MS = 100;
const TOOLTIP_MS = 1600;

export function renderBoard(root, { boardId }) {
  setTitle('Tableau');
  const state = new BoardState();
  const view = new BoardView(state);
  const names = new Map(); // student id → name (the pen, laser labels)
  const model = {
    tool: 'pen', colour: COLOURS[0][0], width: 6, pageId: null, following: true, share: true,
    pen: 'none', boardState: 'live', me: null, board: null, limits: {}, lastView: null,
    wantedView: null, started: false,
  };
  const isTeacher = () => Boolean(model.me?.is_teacher);
  let followers = null;

  // ——— the page ———
  const status = liveStatus();
  const message = h('p', { class: 'board-message', role: 'status', 'aria-live': 'polite' });
  const title = h('h1', { class: 'board-title', tabindex: '-1' }, 'Tableau');
  const meta = h('p', { class: 'board-meta' });
  const penBadge = h('p', { class: 'pen-badge' });
  const teacherBox = h('div', { class: 'bar-group teacher-controls', role: 'group',
    'aria-label': "Commandes de l'enseignant·e", hidden: true });
  const exportMenu = h('details', { class: 'menu menu-end' },
    h('summary', { class: 'btn tool' }, 'Exporter'),
    h('div', { class: 'menu-list' },
      h('a', { class: 'btn menu-item', href: `/api/boards/${encodeURIComponent(boardId)}/export.pdf`,
        download: true }, 'Exporter en PDF'),
      h('a', { class: 'btn menu-item', href: `/api/boards/${encodeURIComponent(boardId)}/export.svg`,
        download: true }, 'Exporter en SVG')));
  const header = h('header', { class: 'board-bar' },
    h('a', { class: 'btn btn-light back', href: '#/', title: 'Retour à Mon espace' },
      icon('back'), h('span', { class: 'label-wide label-back' }, 'Mon espace')),
    h('div', { class: 'board-heading' }, title, meta),
    status, penBadge, teacherBox, exportMenu);

  const tools = drawingTools({
    tool: (name) => {
      model.tool = name;
      if (name !== 'select') selection.clear();
      refresh();
    },
    colour: (hex) => {
      model.colour = hex;
      if (model.tool === 'select' && selection.size) selection.restyle({ color: hex });
      refresh();
    },
    width: (w) => {
      model.width = w;
      if (model.tool === 'select' && selection.size) selection.restyle({ width: w });
      refresh();
    },
    undo: () => control('undo'),
    redo: () => control('redo'),
    image: () => picker.pick('image/png,image/jpeg,image/webp,image/gif')
      .then((file) => file && insertImage(file)),
    instrument: (kind) => instruments.toggle(kind),
    remove: () => selection.remove(),
  });
  const pages = pageBar({
    previous: () => goTo(pageIndex() - 1, { manual: true }),
    next: () => goTo(pageIndex() + 1, { manual: true }),
    addPage,
    zoom: zoomBy,
    follow: toggleFollow,
    fullscreen: toggleFullscreen,
    pages: () => panel.open(),
  }, { teacher: true });
  const progress = importProgress();
  const picker = filePicker();
  const stage = h('div', { class: 'board-stage-wrap' }, view.el, message, progress.el, picker.el);
  view.el.setAttribute('role', 'img');
  // The session's questions (board/chat.js): their button at the end of the page bar, their
  // panel over the drawing area.
  const chat = boardChat(boardId, { area: stage });
  pages.end.append(chat.el);
  const main = h('main', { id: 'contenu', class: 'board-main', tabindex: '-1' },
    tools.el, stage, pages.el);
  const page = h('div', { class: 'board-page', dataset: { itemCount: '0', connection: 'connecting' } },
    header, main);
  replace(root, page);
  view.layout();

  // ——— the live link ———
  const conn = new BoardConnection(boardId, {
    joined,
    op: remoteOp,
    own: confirmed,
    pen: penChanged,
    state: stateChanged,
    view: viewReceived,
    pointer,
    importProgress: (msg) => importReceived(msg),
    instrument: (msg) => instruments.received(msg),
    status: (s, detail) => {
      status.set(s === 'joining' ? 'connecting' : s, detail);
      page.dataset.connection = s;
    },
    refused: (err) => {
      if (err?.code === 'unauthorized') say('Votre session a expiré. Reconnectez-vous.', true);
    },
    fatal: (err) => {
      replace(stage, h('div', { class: 'alert', role: 'alert' },
        h('p', {}, err?.message ?? "Ce tableau n'est pas accessible."),
        h('p', {}, h('a', { href: '#/' }, 'Retour à Mon espace'))));
    },
  });

  const canDraw = () => {
    if (!model.me || model.boardState === 'ended') return false;
    if (isTeacher()) return true;
    if (model.boardState === 'locked') return false;
    const pen = model.pen;
    return pen === 'everyone' || (Array.isArray(pen) && pen.map(String).includes(String(model.me.id)));
  };

  const inputCtx = {
    view, state, conn,
    me: () => model.me,
    tool: () => model.tool,
    pageId: () => model.pageId,
    canDraw,
    limits: () => model.limits,
    style: (kind) => ({
      color: model.colour,
      width: kind === 'highlighter' ? Math.min(64, model.width * 4) : model.width,
      opacity: kind === 'highlighter' ? 0.35 : 1,
      fill: null,
    }),
    local,
    commit,
    dropLocal: (id) => local({ type: 'remove', item_ids: [id] }),
    refused,
    panBy: (dx, dy) => {
      if (view.zoom <= 1) return;
      view.setViewport(view.x + dx, view.y + dy, view.zoom);
      viewChanged({ manual: true });
    },
    openText: (x, y, cx, cy) => text.open(x, y, cx, cy),
    laser: (x, y, pageId) => conn.volatile('pointer', { x, y, page_id: pageId, laser: true }),
  };
  const selection = selectionTool({
    state, view,
    pageId: () => model.pageId,
    canEdit: (item) => mayEdit(item),
    local,
    commit,
    changed: () => refresh(),
    editText: (item) => editText(item),
    limits: () => model.limits,
  });
  inputCtx.selection = selection;
  const instruments = lazyInstruments({
    view,
    isTeacher,
    pageId: () => model.pageId,
    send: (msg) => conn.volatile('instrument', msg),
    changed: () => refresh(),
    preview: (item) => view.preview('compass', item && { ...item, style: inputCtx.style('stroke') }),
    arc: (points) => commit({ type: 'add', item: { id: newId(model.me?.id), kind: 'stroke',
      page_id: model.pageId, style: inputCtx.style('stroke'), points } }),
  });
  inputCtx.guide = (point) => instruments.guide(point);
  const panel = pagesPanel(state, {
    go: (id) => goTo(state.pageIndex(id), { manual: true }),
    move: (id, index) => commit({ type: 'move_page', page_id: id, index }),
    remove: removePage,
    removeAll: removeImport,
    teacher: isTeacher,
    current: () => model.pageId,
  });
  page.append(panel.dialog);
  const cancelGestures = attachInput(inputCtx);
  const text = textTool(stage, view, {
    fontSize: () => FONT_SIZES[model.width] ?? 48,
    maxLength: () => model.limits.text_length || 2000,
    commit: (item) => commit({ type: 'add', item: { ...item, id: newId(model.me?.id),
      page_id: model.pageId, style: { color: model.colour, width: 1, opacity: 1, fill: null } } }),
    edit: (item, set) => commit({ type: 'update', item_id: item.id, set }),
  });
  const boardKeys = attachBoardKeys(inputCtx); // shapes and text placed by keyboard too

  /** The teacher edits anything; a pupil with the pen only their own items (server rules). */
  function mayEdit(item) {
    const me = model.me;
    if (!me || !canDraw()) return false;
    if (me.is_teacher) return true;
    if (item.author !== undefined && item.author !== null) return String(item.author) === String(me.id);
    return item.id.startsWith(`${me.id}-`);
  }

  function editText(item) {
    if (!item || item.kind !== 'text' || !mayEdit(item)) return;
    const rect = view.sheet.getBoundingClientRect();
    const k = rect.width / (1920 / view.zoom);
    const cx = rect.left + (item.box.x - view.x) * k;
    const cy = rect.top + (item.box.y - view.y) * k;
    text.open(item.box.x, item.box.y, cx, cy, item);
  }

  function joined(answer, { snapshot }) {
    model.me = answer.me ?? model.me;
    model.board = answer.board ?? model.board;
    model.limits = answer.limits ?? model.limits;
    if (answer.pen !== undefined) model.pen = answer.pen;
    model.boardState = answer.state ?? answer.board?.state ?? model.boardState;
    if (answer.view) model.lastView = answer.view;
    if (answer.instruments) instruments.load(answer.instruments);
    if (snapshot) {
      state.load(answer.snapshot);
      for (const [id, entry] of view.live) if (!entry.held) view.live.delete(id);
      view.invalidate();
    }
    if (!model.started) start();
    else if (!isTeacher() && model.following && model.lastView) applyView(model.lastView);
    ensurePage();
    refresh();
  }

  function start() {
    model.started = true;
    const board = model.board ?? {};
    title.textContent = board.title || 'Tableau';
    setTitle(board.title ? `Tableau « ${board.title} »` : 'Tableau');
    meta.textContent = [board.owner_name, stateLabel()].filter(Boolean).join(' · ');
    pages.el.querySelector('.follow .label-wide').textContent = isTeacher()
      ? 'Partager ma vue' : "Suivre l'enseignant·e";
    pages.el.querySelector('.menu').hidden = !isTeacher();
    if (!isTeacher()) model.tool = 'pen';
    if (isTeacher()) setUpTeacher(board);
    if (model.lastView && (!isTeacher() || state.page(model.lastView.page_id))) {
      applyView(model.lastView);
    }
    if (!state.pages.length && isTeacher()) addPage('blank');
    ensurePage();
    if (isTeacher()) sendView();
  }

  function setUpTeacher(board) {
    const session = h('details', { class: 'menu menu-end session-menu' },
      h('summary', { class: 'btn tool', title: 'Séance : importer, renommer, effacer, terminer' },
        icon('session'), h('span', { class: 'label-wide' }, 'Séance')),
      h('div', { class: 'menu-list' },
        h('button', { type: 'button', class: 'btn menu-item', dataset: { action: 'import' },
          onclick: () => { session.open = false; pickImport(); } }, icon('import'), 'Importer un PDF ou une image…'),
        h('button', { type: 'button', class: 'btn menu-item', dataset: { action: 'rename' },
          onclick: () => { session.open = false; rename(); } }, 'Renommer le tableau…'),
        h('button', { type: 'button', class: 'btn menu-item', dataset: { action: 'clear' },
          onclick: () => { session.open = false; clearPage(); } }, 'Effacer la page'),
        h('button', { type: 'button', class: 'btn menu-item danger', dataset: { action: 'end' },
          onclick: () => { session.open = false; endSession(); } }, 'Terminer la séance')));
    const pen = penControl({
      classId: board.class_id, names, current: () => model.pen,
      grant: async (p) => {
        const ack = await control('grant', { pen: p });
        if (ack.ok) { model.pen = p; refresh(); }
        return ack;
      },
    });
    const lock = h('button', { type: 'button', class: 'btn tool', 'aria-pressed': 'false',
      onclick: () => control('lock', { locked: model.boardState !== 'locked' }) },
    icon('lock'), h('span', { class: 'label-wide' }, 'Verrouiller'));
    lock.dataset.role = 'lock';
    followers = followersPanel(board.id, { me: model.me }); // who follows (presence)
    pen.button.title = 'Donner le stylet';
    replace(teacherBox, pen.button, lock, followers.el, session);
    teacherBox.hidden = false;
    page.append(pen.dialog);
    pen.load().then(refresh); // the students' names, for « Stylet : Léa, Hugo »
  }

  const stateLabel = () => ({ live: 'En direct', locked: 'Verrouillé', ended: 'Terminé' })[model.boardState];

  // ——— applying ops ———
  function local(op) {
    const change = state.apply(op);
    view.changed(change);
    afterChange(change);
    return change;
  }

  /**
   * Apply here and send. Refused for speed (`rate_limited`: a busy server, say rendering a
   * PDF), nothing was applied there: the same op goes again a little later, as strokes do
   * (stroke.js); refused otherwise, the board is fetched again to show the server's truth.
   */
  function commit(op, retries = 0) {
    if (!retries) local(op);
    conn.submit(op).then((ack) => {
      if (ack.ok || ack.error?.code === 'reset') return;
      if (ack.error?.code === 'rate_limited' && retries < 12) {
        setTimeout(() => commit(op, retries + 1), 250 + Math.random() * 350);
        return;
      }
      refused(ack.error, { resync: true });
    });
  }

  function remoteOp(op) {
    if (op?.type === 'control') { // pen and state changes also come in seq order
      if (op.title && model.board) {
        model.board = { ...model.board, title: op.title };
        title.textContent = op.title;
        setTitle(`Tableau « ${op.title} »`);
      }
      penChanged(op.pen_all ? 'everyone' : op.pen?.length ? op.pen : 'none');
      if (op.state && op.state !== model.boardState) stateChanged(op.state);
      return;
    }
    const change = state.apply(op);
    view.changed(change);
    afterChange(change);
  }

  /** Our own op came back: keep what the server filled in (author, stacking order). */
  function confirmed(op) {
    const item = op?.type === 'add' ? state.items.get(op.item?.id) : null;
    if (item) { item.author = op.item.author; item.z = op.item.z; }
  }

  function afterChange(change) {
    if (change.redraw.size || change.pages) selection.prune();
    panel.changed();
    if (change.pages) {
      if (model.wantedView && state.page(model.wantedView.page_id)) applyView(model.wantedView);
      if (model.goToWhenAdded && state.page(model.goToWhenAdded)) {
        const id = model.goToWhenAdded;
        model.goToWhenAdded = null;
        goTo(state.pageIndex(id), { manual: true });
      }
      ensurePage();
      refresh();
    } else {
      counts();
    }
  }

  function refused(error, { resync = false } = {}) {
    say(error?.message || 'Action refusée par le serveur.');
    if (resync) conn.resync();
  }

  async function control(event, payload) {
    const ack = await conn.control(event, payload);
    if (!ack.ok) say(ack.error?.message || 'Action refusée.');
    return ack;
  }

  let messageTimer = 0;
  function say(text, sticky = false) {
    message.textContent = text;
    clearTimeout(messageTimer);
    if (!sticky) messageTimer = setTimeout(() => { message.textContent = ''; }, MESSAGE_MS);
  }

  // ——— running the session ———
  async function rename() {
    const value = await ask(page, { title: 'Renommer le tableau', confirm: 'Renommer',
      input: { label: 'Titre du tableau', value: model.board?.title ?? '', maxLength: 120 } });
    if (value) {
      const ack = await control('rename', { title: value });
      if (ack.ok) say('Tableau renommé.');
    }
  }

  async function clearPage() {
    if (!model.pageId || !state.countOn(model.pageId)) { say('La page est déjà vide.'); return; }
    const yes = await ask(page, { title: 'Effacer la page ?', confirm: 'Effacer la page', danger: true,
      text: 'Tout ce qui est écrit sur cette page disparaît, pour toute la classe. « Annuler » (Ctrl+Z) le fait revenir.' });
    if (yes) commit({ type: 'clear', page_id: model.pageId });
  }

  async function endSession() {
    const yes = await ask(page, { title: 'Terminer la séance ?', confirm: 'Terminer la séance', danger: true,
      text: 'Le tableau passe en lecture seule pour tout le monde. Il reste consultable et exportable.' });
    if (yes) await control('end');
  }

  async function removePage(id, index) {
    const yes = await ask(page, { title: `Supprimer la page ${index + 1} ?`, confirm: 'Supprimer', danger: true,
      text: 'La page et ce qui est écrit dessus disparaissent. « Annuler » (Ctrl+Z) la fait revenir.' });
    if (yes) commit({ type: 'remove_page', page_id: id });
    panel.render();
  }

  async function removeImport(ids) {
    const yes = await ask(page, { title: `Supprimer les ${ids.length} pages de cet import ?`,
      confirm: 'Supprimer les pages', danger: true,
      text: 'Les pages du document importé et ce qui est écrit dessus disparaissent, pour toute la classe.' });
    if (yes) for (const id of ids) if (state.page(id)) commit({ type: 'remove_page', page_id: id });
    panel.render();
  }

  function pickImport() {
    picker.pick('application/pdf,.pdf,image/png,image/jpeg,image/webp,image/gif')
      .then((file) => file && importFile(file));
  }

  let importing = false;
  async function importFile(file) {
    if (!isTeacher()) { say("Seul·e l'enseignant·e importe des pages."); return; }
    if (importing) { say('Un import est déjà en cours.'); return; }
    const max = model.limits.import_bytes;
    if (max && file.size > max) {
      say(`Fichier trop lourd (${Math.floor(max / (1024 * 1024))} Mio au plus).`);
      return;
    }
    importing = true;
    const name = file.name || 'document';
    progress.show(`Envoi de « ${name} »…`, 0);
    const before = state.pages.length;
    const { status, body } = await uploadPages(boardId, file, (f) => {
      progress.show(f < 1 ? `Envoi de « ${name} »… ${Math.round(f * 100)} %` : `Préparation des pages de « ${name} »…`,
        f < 1 ? f * 0.3 : null);
    });
    importing = false;
    if (status === 201) {
      const n = body.pages.length;
      progress.done(`${n} page${n > 1 ? 's' : ''} importée${n > 1 ? 's' : ''}.`);
      const first = body.pages[0]?.id;
      if (first && state.page(first)) goTo(state.pageIndex(first), { manual: true });
      else if (first) model.goToWhenAdded = first;
    } else {
      progress.hide();
      say(body?.error?.message ?? `L'import a échoué (${status}).`);
      if (state.pages.length !== before) conn.resync();
    }
  }

  /** The server's progress (every member sees it): the bar goes on from the upload's 30 %. */
  function importReceived(msg) {
    const fraction = 0.3 + 0.7 * (msg.done / Math.max(1, msg.total));
    const text = `Import de « ${msg.name || 'document'} » : page ${msg.done} sur ${msg.total}`;
    if (msg.done >= msg.total) progress.done(`${msg.total} page${msg.total > 1 ? 's' : ''} importée${msg.total > 1 ? 's' : ''}.`);
    else progress.show(text, fraction);
  }

  async function insertImage(file, at = null) {
    if (!canDraw() || !model.pageId) { say("Vous n'avez pas le stylet."); return; }
    const pageId = model.pageId;
    progress.show(`Envoi de l'image…`, null);
    let uploaded;
    try {
      uploaded = await uploadImage(boardId, file, model.limits.image_bytes || 2 * 1024 * 1024);
    } catch (err) {
      progress.hide();
      say(err.message);
      return;
    }
    progress.hide();
    const v = view.visible();
    const [iw, ih] = uploaded.size;
    const k = Math.min((v.w * 0.6) / iw, (v.h * 0.6) / ih);
    const w = Math.round(iw * k);
    const hgt = Math.round(ih * k);
    const centre = at ? view.toBoard(at.clientX, at.clientY) : [v.x + v.w / 2, v.y + v.h / 2];
    const item = { id: newId(model.me?.id), kind: 'image', page_id: pageId, src: uploaded.src,
      box: { x: Math.round(centre[0] - w / 2), y: Math.round(centre[1] - hgt / 2), w, h: hgt },
      style: { color: '#111827', width: 1, opacity: 1, fill: null } };
    commit({ type: 'add', item });
    model.tool = 'select'; // to move and resize it at once
    selection.select([item.id]);
    refresh();
  }

  function filesArrived(files, at) {
    const pdf = files.find(isPdf);
    if (pdf) { importFile(pdf); return; }
    const image = files.find(isImage);
    if (image) insertImage(image, at);
    else say('Déposez un PDF ou une image (PNG, JPEG, WebP, GIF).');
  }
  const stopFiles = acceptFiles(page, { files: filesArrived });

  // Tooltips that work on touch: a finger has no hover, so touching a tool shows its name.
  const tip = h('div', { class: 'touch-tip', role: 'tooltip', hidden: true });
  page.append(tip);
  let tipTimer = 0;
  page.addEventListener('pointerdown', (e) => {
    if (e.pointerType === 'mouse') return;
    const target = e.target.closest?.('button[title], summary[title], .btn.tool');
    const name = target?.getAttribute('title') || target?.textContent?.trim();
    if (!target || !name) return;
    const r = target.getBoundingClientRect();
    tip.textContent = name;
    tip.hidden = false;
    const below = r.bottom + 44 < innerHeight;
    tip.style.left = `${Math.min(innerWidth - 8, Math.max(8, r.left + r.width / 2))}px`;
    tip.style.top = `${below ? r.bottom + 6 : r.top - 6}px`;
    tip.dataset.side = below ? 'below' : 'above';
    clearTimeout(tipTimer);
    tipTimer = setTimeout(() => { tip.hidden = true; }, TOOLTIP_MS);
  });

  // ——— pages and view ———
  const pageIndex = () => state.pageIndex(model.pageId);

  function ensurePage() {
    if (model.pageId && state.page(model.pageId)) return;
    const fallback = state.pages[Math.min(Math.max(0, model.lastIndex ?? 0), state.pages.length - 1)];
    showPage(fallback?.id ?? null);
  }

  function showPage(id) {
    if (id !== model.pageId) selection.clear();
    model.pageId = id;
    model.lastIndex = state.pageIndex(id);
    view.setPage(id);
    instruments.refresh();
    const i = model.lastIndex; // the pages on either side: their backgrounds, ready
    for (const near of [state.pages[i + 1], state.pages[i - 1]]) {
      if (near?.background === 'image') preload(near.image);
    }
  }

  function goTo(index, { manual = false } = {}) {
    const target = state.pages[index];
    if (!target) return;
    cancelGestures();
    showPage(target.id);
    view.setViewport(0, 0, 1);
    viewChanged({ manual });
    refresh();
  }

  function addPage(background) {
    const max = model.limits.pages_per_board;
    if (max && state.pages.length >= max) { say(`Ce tableau a déjà ${max} pages, le maximum.`); return; }
    const index = pageIndex() + 1;
    commit({ type: 'add_page', page: { id: newId(model.me?.id), background }, index });
    goTo(index);
  }

  function zoomBy(delta) {
    const i = ZOOMS.findIndex((z) => z >= view.zoom - 1e-6);
    const z = ZOOMS[Math.max(0, Math.min(ZOOMS.length - 1, (i < 0 ? 0 : i) + delta))];
    const cx = view.x + PAGE_W / view.zoom / 2;
    const cy = view.y + PAGE_H / view.zoom / 2;
    view.setViewport(cx - PAGE_W / z / 2, cy - PAGE_H / z / 2, z);
    viewChanged({ manual: true });
    refresh();
  }

  /** The teacher tells the class; a student who moves on their own stops following. */
  function viewChanged({ manual }) {
    if (isTeacher()) sendView();
    else if (manual && model.following) {
      model.following = false;
      say("Vous ne suivez plus l'enseignant·e. Touchez « Suivre l'enseignant·e » pour revenir.");
      refresh();
    }
  }

  let viewTimer = 0;
  let viewSentAt = 0;
  function sendView() {
    if (!isTeacher() || !model.share || !model.pageId) return;
    const send = () => {
      viewSentAt = performance.now();
      conn.volatile('view', { page_id: model.pageId, x: view.x, y: view.y, zoom: view.zoom });
    };
    clearTimeout(viewTimer);
    const wait = VIEW_EVERY_MS - (performance.now() - viewSentAt);
    if (wait <= 0) send(); else viewTimer = setTimeout(send, wait);
  }

  function viewReceived(v) {
    model.lastView = v;
    if (!isTeacher() && model.following) applyView(v);
  }

  function applyView(v) {
    if (!state.page(v.page_id)) { model.wantedView = v; return; } // its page is on its way
    model.wantedView = null;
    if (v.page_id !== model.pageId) cancelGestures();
    showPage(v.page_id);
    view.setViewport(v.x, v.y, v.zoom);
    refresh();
  }

  function toggleFollow() {
    if (isTeacher()) {
      model.share = !model.share;
      if (model.share) sendView();
      say(model.share ? 'La classe suit votre vue.' : 'Vous naviguez seul·e : la classe garde sa page.');
    } else {
      model.following = !model.following;
      if (model.following && model.lastView) applyView(model.lastView);
      say(model.following ? "Vous suivez l'enseignant·e." : "Vous ne suivez plus l'enseignant·e.");
    }
    refresh();
  }

  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen?.();
    else page.requestFullscreen?.().catch(() => say('Le plein écran est refusé par le navigateur.'));
  }

  // ——— pen, state, pointers ———
  function penChanged(pen) {
    const could = canDraw();
    model.pen = pen;
    if (!isTeacher() && could !== canDraw()) {
      say(canDraw() ? 'Vous avez le stylet : vous pouvez écrire au tableau.'
        : "Vous n'avez plus le stylet.");
    }
    if (!canDraw()) cancelGestures();
    refresh();
  }

  function stateChanged(s) {
    if (s === model.boardState) return;
    model.boardState = s;
    say({ live: 'Le tableau est ouvert.', locked: "Le tableau est verrouillé : seul·e l'enseignant·e écrit.",
      ended: 'Le cours est terminé : le tableau est en lecture seule.' }[s] ?? '');
    if (!canDraw()) cancelGestures();
    refresh();
  }

  function pointer(msg) {
    if (!msg.laser || String(msg.user_id) === String(model.me?.id)) return;
    view.laser(String(msg.user_id), msg.name, msg.page_id, msg.x, msg.y);
  }

  // ——— showing it all ———
  function counts() {
    const n = model.pageId ? state.countOn(model.pageId) : 0;
    page.dataset.itemCount = String(state.items.size);
    page.dataset.pageCount = String(state.pages.length);
    page.dataset.seq = String(conn.seq);
    view.el.setAttribute('aria-label', model.pageId
      ? `Tableau, page ${pageIndex() + 1} sur ${state.pages.length} : ${n} élément${n > 1 ? 's' : ''}`
      : 'Tableau sans page');
  }

  function refresh() {
    const draw = canDraw();
    tools.update({ tool: model.tool, colour: model.colour, width: model.width, canDraw: draw,
      teacher: isTeacher(), selected: selection.size, shown: (kind) => instruments.shown(kind) });
    pages.update({
      index: pageIndex(), count: state.pages.length, zoom: view.zoom,
      following: isTeacher() ? model.share : model.following,
      fullscreen: Boolean(document.fullscreenElement),
    });
    page.dataset.canDraw = String(draw);
    page.dataset.tool = model.tool;
    page.dataset.pageId = model.pageId ?? '';
    page.dataset.zoom = String(view.zoom);
    stage.dataset.tool = draw ? model.tool : 'none';
    penBadge.textContent = model.boardState === 'ended' ? 'Terminé · lecture seule'
      : isTeacher() ? penText(model.pen, names)
        : draw ? 'Vous avez le stylet' : "Vous n'avez pas le stylet";
    penBadge.title = penBadge.textContent; // in full, where the header cuts it short
    penBadge.classList.toggle('ended', model.boardState === 'ended');
    page.dataset.state = model.boardState;
    penBadge.classList.toggle('has-pen', !isTeacher() && draw);
    const lock = teacherBox.querySelector('[data-role=lock]');
    if (lock) { // says when the board is locked, and what a touch does
      const locked = model.boardState === 'locked';
      lock.setAttribute('aria-pressed', String(locked));
      lock.disabled = model.boardState === 'ended';
      lock.querySelector('.label-wide').textContent = locked ? 'Verrouillé' : 'Verrouiller';
      lock.title = locked ? 'Tableau verrouillé : seul·e vous écrivez. Touchez pour déverrouiller.'
        : 'Verrouiller : seul·e vous pourrez écrire';
      lock.setAttribute('aria-label', locked ? 'Verrouillé (déverrouiller)' : 'Verrouiller');
    }
    const ended = model.boardState === 'ended'; // read-only: no pen to give, no page to add
    for (const el of teacherBox.querySelectorAll('.session-menu [data-action]')) {
      el.disabled = ended && el.dataset.action !== 'rename';
    }
    const penButton = teacherBox.querySelector('.pen-button');
    if (penButton) penButton.disabled = ended;
    if (model.started) pages.el.querySelector('.menu').hidden = !isTeacher() || ended;
    if (model.started) {
      meta.textContent = [model.board?.owner_name, stateLabel()].filter(Boolean).join(' · ');
    }
    counts();
  }

  // ——— keyboard: undo, redo, pages ———
  function onKey(e) {
    if (e.target.closest?.('input, textarea, select, dialog')) return;
    const key = e.key.toLowerCase();
    if ((e.ctrlKey || e.metaKey) && key === 'z' && !e.shiftKey) { e.preventDefault(); control('undo'); }
    else if ((e.ctrlKey || e.metaKey) && (key === 'y' || (key === 'z' && e.shiftKey))) {
      e.preventDefault();
      control('redo');
    } else if ((e.key === 'Delete' || e.key === 'Backspace') && selection.size) {
      e.preventDefault();
      selection.remove();
    } else if (e.key === 'Escape' && selection.size) selection.clear();
    else if (selection.size && e.key.startsWith('Arrow')) { // nudge: 1 unit, 10 with Maj
      e.preventDefault();
      const step = e.shiftKey ? 10 : 1;
      const [dx, dy] = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step],
        ArrowDown: [0, step] }[e.key] ?? [0, 0];
      if (dx || dy) commit({ type: 'move', item_ids: selection.ids, dx, dy });
    }
    else if (e.key === 'PageDown') goTo(pageIndex() + 1, { manual: true });
    else if (e.key === 'PageUp') goTo(pageIndex() - 1, { manual: true });
  }
  document.addEventListener('keydown', onKey);
  const onFullscreen = () => { view.layout(); refresh(); };
  document.addEventListener('fullscreenchange', onFullscreen);

  // Test and debugging hook: the board as this page holds it.
  window.__board = {
    state, view, conn, model,
    get items() { return state.items; },
    get pages() { return state.pages; },
    undo: () => control('undo'),
    redo: () => control('redo'),
    selection,
    instruments,
  };
  refresh();
  title.focus();

  return function close() {
    document.removeEventListener('keydown', onKey);
    document.removeEventListener('fullscreenchange', onFullscreen);
    stopFiles();
    clearTimeout(tipTimer);
    if (document.fullscreenElement) document.exitFullscreen?.();
    cancelGestures();
    boardKeys.destroy();
    text.close();
    clearTimeout(viewTimer);
    clearTimeout(messageTimer);
    conn.close();
    followers?.close();
    chat.close();
    view.destroy();
    if (window.__board?.conn === conn) delete window.__board;
  };
}
