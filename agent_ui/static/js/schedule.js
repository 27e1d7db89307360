// Rate limits for reloads: debounce, and coalesce for reloads triggered by live events.

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

/**
 * Coalesce reloads triggered by live events: the first call after a quiet spell runs ``fn`` after ``gather`` ms
 * (events of one transaction arrive together), later calls join the next run, and runs start at least
 * ``interval`` ms apart and never overlap (a call during a run schedules one more run after it). So a burst of
 * events costs at most one request per ``interval``, and the first change still shows within gather + request.
 */
export function coalesce(fn, { gather = 40, interval = 300 } = {}) {
  let timer = null;
  let running = false;
  let again = false;
  let lastStart = -Infinity;
  const run = async () => {
    timer = null;
    running = true;
    lastStart = Date.now();
    try { await fn(); } catch (err) { console.error(err); } finally {
      running = false;
      if (again) { again = false; schedule(); }
    }
  };
  function schedule() {
    if (running) { again = true; return; }
    if (timer) return;
    timer = setTimeout(run, Math.max(gather, lastStart + interval - Date.now()));
  }
  return schedule;
}
