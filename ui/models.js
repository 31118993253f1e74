// SPDX-License-Identifier: MIT
// The model picker in the top bar: the models of GET /api/v1/models in a <select>; picking one
// posts POST /api/v1/sessions/model for the open session, whose next run then uses it (a run
// already going keeps its model, so the picker is disabled while one runs). It follows the page
// by watching the session list and the status indicator, so app.js only has to start it.

import { getJson, postJson } from './api.js';

const keyOf = (m) => `${m.provider}\n${m.id}`;

/**
 * Starts the picker. `state` is app.js's page state ({sessions, id, running}); the picker reads
 * it and updates the open session's metadata in state.sessions after a change.
 */
export async function initModelPicker(state) {
    let models;
    try {
        ({ models } = await getJson('/models'));
    } catch {
        return; // no picker without the list
    }
    if (!Array.isArray(models) || models.length < 2) return; // nothing to choose from

    const select = document.createElement('select');
    select.id = 'model-picker';
    select.className = 'model-picker';
    select.setAttribute('aria-label', 'Model');
    for (const m of models) {
        const opt = document.createElement('option');
        opt.value = keyOf(m);
        opt.textContent = m.displayName || m.id; // text only: never HTML
        opt.title = `${m.provider} / ${m.id}`;
        select.append(opt);
    }
    const anchor = document.getElementById('session-usage') || document.getElementById('session-title');
    anchor.after(select);

    let busy = false;
    const current = () => state.sessions.find((s) => s.id === state.id);

    function refresh() {
        const s = current();
        const mc = s && s.metadata && s.metadata.modelConfig;
        const key = mc && mc.provider && mc.id ? keyOf(mc) : keyOf(models[0]);
        // A model that is no longer configured shows as the default, which is what runs.
        select.value = models.some((m) => keyOf(m) === key) ? key : keyOf(models[0]);
        select.disabled = busy || !state.id || state.running;
        select.title = state.running ? 'The model can be changed when the run has ended' : '';
    }

    select.addEventListener('change', async () => {
        const model = models.find((m) => keyOf(m) === select.value);
        const sessionId = state.id;
        if (!model || !sessionId) return;
        busy = true;
        refresh();
        select.value = keyOf(model);
        try {
            const { sessionInfo } = await postJson('/sessions/model', { sessionId, model });
            const s = state.sessions.find((x) => x.id === sessionId);
            if (s && sessionInfo && sessionInfo.metadata) s.metadata = sessionInfo.metadata;
            select.dataset.saved = keyOf(model);
        } catch (e) {
            select.title = `Cannot change the model: ${e.message}`;
        } finally {
            busy = false;
            refresh();
        }
    });

    // The session list is re-rendered on every switch and reload; the status on every run.
    const watch = new MutationObserver(refresh);
    watch.observe(document.getElementById('session-list'), { childList: true, subtree: true });
    watch.observe(document.getElementById('status'), { attributes: true, attributeFilter: ['data-state'] });
    refresh();
}
