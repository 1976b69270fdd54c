// The login page: an identifier and a personal code, errors read out in French.
import { api } from '../api.js';
import { h, replace, setTitle } from '../dom.js';

export function renderLogin(root, { onLoggedIn, notice }) {
  setTitle('Connexion');
  const error = h('div', { class: 'alert', role: 'alert', id: 'login-error' });
  const login = h('input', {
    id: 'login', name: 'login', type: 'text', required: true, autocomplete: 'username',
    autocapitalize: 'none', spellcheck: 'false',
    'aria-describedby': 'login-hint',
  });
  const code = h('input', {
    id: 'code', name: 'code', type: 'password', required: true,
    autocomplete: 'current-password', 'aria-describedby': 'code-hint',
  });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Se connecter');

  const form = h('form', { class: 'login-form', novalidate: true, 'aria-describedby': 'login-error' },
    h('div', { class: 'field' },
      h('label', { for: 'login' }, 'Identifiant'),
      h('p', { class: 'hint', id: 'login-hint' }, 'Par exemple : prenom.nom'),
      login),
    h('div', { class: 'field' },
      h('label', { for: 'code' }, 'Code personnel'),
      h('p', { class: 'hint', id: 'code-hint' }, 'Le code remis par votre établissement.'),
      code),
    error,
    submit);

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const missing = !login.value.trim() ? login : !code.value ? code : null;
    if (missing) {
      showError(missing === login ? 'Saisissez votre identifiant.' : 'Saisissez votre code personnel.');
      missing.setAttribute('aria-invalid', 'true');
      missing.focus();
      return;
    }
    busy(true);
    try {
      const { user } = await api.login(login.value.trim(), code.value);
      onLoggedIn(user);
    } catch (err) {
      busy(false);
      showError(err.message);
      code.value = '';
      code.setAttribute('aria-invalid', 'true');
      code.focus();
    }
  });
  for (const input of [login, code]) {
    input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
  }

  function busy(on) {
    submit.disabled = on;
    form.setAttribute('aria-busy', String(on));
    submit.textContent = on ? 'Connexion…' : 'Se connecter';
  }
  function showError(message) {
    replace(error, h('p', {}, message));
  }

  replace(root,
    h('main', { id: 'contenu', class: 'login-page', tabindex: '-1' },
      h('div', { class: 'login-card' },
        h('p', { class: 'brand' }, 'ENT des collèges'),
        h('h1', {}, 'Connexion à votre espace'),
        notice ? h('p', { class: 'notice', role: 'status' }, notice) : null,
        form)));
  login.focus();
}
