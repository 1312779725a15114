// ckpt ui: live updates and selection state. Everything works without this
// script (plain links and forms); it only keeps pages current and the
// checkpoint selection in the URL.
(() => {
  const main = document.getElementById('main');

  // Selection: every ticked checkpoint id goes into ?sel=, so going back to
  // the list (or sharing the link) keeps it.
  function syncSelection() {
    const boxes = [...document.querySelectorAll('input[type=checkbox][name=ids]')];
    if (boxes.length === 0) return;
    const url = new URL(location.href);
    const previous = new Set((url.searchParams.get('sel') || '').split(',').filter(Boolean));
    for (const box of boxes) {
      if (box.checked) previous.add(box.value);
      else previous.delete(box.value);
    }
    if (previous.size > 0) url.searchParams.set('sel', [...previous].join(','));
    else url.searchParams.delete('sel');
    history.replaceState(history.state, '', url);
    const counter = document.querySelector('[data-selected]');
    if (counter) counter.textContent = String(previous.size);
  }
  document.addEventListener('change', (event) => {
    if (event.target instanceof HTMLInputElement && event.target.name === 'ids') syncSelection();
  });

  // Live: when the files behind this page change, fetch it again and swap
  // <main>, unless the user is typing in it (then after they leave the field).
  let stale = false;
  const busy = () => {
    const active = document.activeElement;
    return (
      active && main.contains(active) && /^(INPUT|TEXTAREA|SELECT)$/.test(active.tagName) && active.type !== 'checkbox'
    );
  };
  async function refresh() {
    if (busy()) {
      stale = true;
      return;
    }
    stale = false;
    const response = await fetch(location.href, { headers: { 'x-ckpt-partial': '1' } });
    if (!response.ok) return;
    main.innerHTML = await response.text();
    document.dispatchEvent(new CustomEvent('ckpt:updated'));
  }
  document.addEventListener('focusout', () => {
    if (stale) setTimeout(refresh, 0);
  });
  if (window.EventSource) {
    const experiment = document.body.dataset.experiment;
    const source = new EventSource(`/api/events${experiment ? `?experiment=${encodeURIComponent(experiment)}` : ''}`);
    let timer;
    source.addEventListener('change', () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, 100); // a save writes several files: one refresh for all
    });
  }
})();
