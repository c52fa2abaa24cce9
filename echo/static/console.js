// Echo console: CSRF for HTMX, passkey ceremonies, remote images on request, keyboard shortcuts.
// No inline script anywhere (CSP).
(function () {
  "use strict";
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  document.addEventListener("htmx:configRequest", (event) => { event.detail.headers["X-CSRFToken"] = csrf(); });

  // A refused action answers 4xx with its message (the ticket again with the error on it, or the
  // message alone retargeted to #flash): show it, where HTMX would by default show nothing.
  const flash = (message) => {
    const region = document.getElementById("flash");
    if (!region) return;
    region.replaceChildren(Object.assign(document.createElement("p"),
      { className: "banner error", textContent: message, role: "alert" }));
  };
  document.addEventListener("htmx:beforeRequest", () => document.getElementById("flash")?.replaceChildren());
  document.addEventListener("htmx:beforeSwap", (event) => {
    const status = event.detail.xhr.status;
    if (status >= 400 && status < 500 && status !== 401 && event.detail.xhr.responseText) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    } else if (status >= 500) {
      flash("Something went wrong on our side. Nothing was changed; try again in a moment.");
    }
  });
  document.addEventListener("htmx:sendError", () => flash("Echo cannot be reached. Check your connection and try again."));

  async function postJSON(url, body) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body || {}),
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.message || "Something went wrong. Try again.");
    return data;
  }

  function show(target, message) {
    const box = document.getElementById(target || "passkey-status");
    if (box) { box.textContent = message; box.hidden = false; }
  }

  async function signIn(button) {
    const options = await postJSON(button.dataset.options);
    const credential = await SimpleWebAuthnBrowser.startAuthentication({ optionsJSON: options });
    const result = await postJSON(button.dataset.verify, { credential });
    window.location.assign(result.redirect);
  }

  async function register(button) {
    const token = button.dataset.token;  // enrolment links only
    const options = await postJSON(button.dataset.options, token ? { token } : {});
    const credential = await SimpleWebAuthnBrowser.startRegistration({ optionsJSON: options });
    const name = document.getElementById("passkey-name")?.value || "Passkey";
    const result = await postJSON(button.dataset.verify, { credential, name, token });
    window.location.assign(result.redirect);
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest("[data-passkey]");
    if (!button) return;
    event.preventDefault();
    button.disabled = true;
    try {
      if (button.dataset.passkey === "sign-in") await signIn(button);
      else await register(button);
    } catch (error) {
      show(button.dataset.status, error.message || String(error));
    } finally {
      button.disabled = false;
    }
  });

  // Remote images in a message wait in data-remote-src until the agent asks (as mail clients do).
  // The server already dropped Echo's own hosts; this checks again with the browser's own URL
  // parser, so no image can fetch from the console's host with the agent's cookies.
  function remoteImageURL(raw) {
    let url;
    try { url = new URL(raw); } catch { return null; }
    if (url.protocol === "http:") url.protocol = "https:";  // the ticket page's CSP allows https images only
    const host = url.hostname;
    const own = location.hostname;
    if (url.protocol !== "https:" || host === own || host.endsWith("." + own) || host === "localhost"
        || host.endsWith(".localhost") || host.startsWith("[") || /^[0-9.]+$/.test(host)) return null;
    return url.href;
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("[data-show-images]");
    if (!button) return;
    const message = button.closest(".message") || document;
    for (const image of message.querySelectorAll("img[data-remote-src]")) {
      const url = remoteImageURL(image.dataset.remoteSrc);
      image.removeAttribute("data-remote-src");
      if (url) { image.referrerPolicy = "no-referrer"; image.src = url; }
    }
    button.closest(".remote-images").remove();
  });

  // Keyboard: j/k move through the inbox, Enter opens, / searches, r replies, n notes, g then i goes to the inbox,
  // Ctrl/Cmd+Enter sends what is being typed.
  let lastKey = "";
  document.addEventListener("keydown", (event) => {
    // Ctrl/Cmd+Enter in a reply or note box sends it (through the form, so HTMX and checks still apply).
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.tagName === "TEXTAREA"
        && event.target.form) {
      event.preventDefault();
      event.target.form.requestSubmit();
      return;
    }
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName) || event.target.isContentEditable;
    if (typing || event.metaKey || event.ctrlKey || event.altKey) return;
    const rows = Array.from(document.querySelectorAll(".list .row"));
    const current = rows.findIndex((row) => row.classList.contains("selected"));
    const select = (index) => {
      if (!rows.length) return;
      rows.forEach((row) => row.classList.remove("selected"));
      const row = rows[Math.max(0, Math.min(rows.length - 1, index))];
      row.classList.add("selected"); row.focus();
    };
    const focus = (id) => { const el = document.getElementById(id); if (el) { event.preventDefault(); el.focus(); } };
    if (event.key === "x" && current >= 0) {
      const pick = rows[current].parentElement.querySelector(".pick");
      if (pick) { pick.checked = !pick.checked; updateSelection(); }
    } else if (event.key === "\\") focus("saved-reply");
    else if (event.key === "j") select(current + 1);
    else if (event.key === "k") select(current - 1);
    else if (event.key === "Enter" && current >= 0) rows[current].click();
    else if (event.key === "/") focus("search");
    else if (event.key === "r") focus("reply-body");
    else if (event.key === "n") focus("note-body");
    else if (event.key === "i" && lastKey === "g") window.location.assign("/tickets");
    lastKey = event.key;
  });

  // --- Bulk selection in the inbox -------------------------------------------------------------
  function updateSelection() {
    const bar = document.getElementById("bulk-form");
    if (!bar) return;
    const picked = document.querySelectorAll(".list .pick:checked").length;
    bar.classList.toggle("active", picked > 0);
    const count = document.getElementById("bulk-count");
    if (count) count.textContent = `${picked} selected`;
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches("[data-select-all]")) {
      for (const pick of document.querySelectorAll(".list .pick")) pick.checked = event.target.checked;
    }
    if (event.target.matches(".pick, [data-select-all]")) updateSelection();
  });
  document.addEventListener("click", (event) => {
    if (!event.target.closest("[data-clear-selection]")) return;
    for (const pick of document.querySelectorAll(".pick, [data-select-all]")) pick.checked = false;
    updateSelection();
  });
  document.addEventListener("htmx:afterSwap", updateSelection);

  // The view the agent works through, for "send and next" on a ticket page.
  if (document.getElementById("ticket-list")) sessionStorage.setItem("echo-view", location.pathname + location.search);
  function fillView() {
    for (const input of document.querySelectorAll("[data-view]")) input.value = sessionStorage.getItem("echo-view") || "";
  }

  // --- Drafts: saved on the server as the agent types, and in this browser until the reply is sent, so
  // neither a reload nor a lapsed session loses a word. -------------------------------------------
  const draftKey = (form) => `echo-draft:${form.dataset.ticket}`;
  const draftFields = (form) => ({ body: form.elements.body?.value || "", cc: form.elements.cc?.value || "",
                                   bcc: form.elements.bcc?.value || "" });
  let draftTimer = null;
  function saveDraft(form) {
    const fields = draftFields(form);
    localStorage.setItem(draftKey(form), JSON.stringify({ ...fields, at: Date.now() }));
    clearTimeout(draftTimer);
    draftTimer = setTimeout(async () => {
      const status = document.getElementById("draft-status");
      try {
        const response = await fetch(form.dataset.draftUrl, {
          method: "POST", credentials: "same-origin", redirect: "manual",
          // As HTMX sends them: a lapsed session answers 401 (not a redirect to the sign-in page).
          headers: { "X-CSRFToken": csrf(), "HX-Request": "true", "HX-Current-URL": location.href },
          body: new URLSearchParams(fields),
        });
        if (response.ok && response.type !== "opaqueredirect") {
          if (status) status.textContent = (await response.text()).slice(0, 80);
        } else if (response.status === 401 || response.type === "opaqueredirect") {
          if (status) status.textContent = "Signed out: your draft is kept in this browser. Sign in again to send it.";
        } else if (status) status.textContent = "The draft could not be saved on the server.";
      } catch { if (status) status.textContent = "Offline: the draft is kept in this browser."; }
    }, 800);
  }
  function restoreDraft() {
    const form = document.getElementById("reply-form");
    if (!form || !form.dataset.ticket) return;
    fillView();
    const kept = JSON.parse(localStorage.getItem(draftKey(form)) || "null");
    if (!kept) return;
    const box = form.elements.body;
    // What this browser kept wins when the server has less of it (typed after the session lapsed).
    if (kept.body && kept.body !== box.value && kept.body.length >= box.value.length) {
      box.value = kept.body;
      if (form.elements.cc && kept.cc) form.elements.cc.value = kept.cc;
      if (form.elements.bcc && kept.bcc) form.elements.bcc.value = kept.bcc;
      saveDraft(form);
    }
  }
  document.addEventListener("input", (event) => {
    const form = event.target.closest("#reply-form");
    if (form && event.target.name !== "attachments" && event.target.id !== "saved-reply") saveDraft(form);
  });
  // A sent reply's browser copy goes before the page is swapped (so it is not put back in the new box).
  document.addEventListener("htmx:beforeSwap", (event) => {
    const form = event.detail.requestConfig?.elt;
    const status = event.detail.xhr.status;
    if (form && form.id === "reply-form" && status >= 200 && status < 300) {
      clearTimeout(draftTimer);
      localStorage.removeItem(draftKey(form));
    }
  });
  document.addEventListener("htmx:afterSwap", restoreDraft);
  document.addEventListener("DOMContentLoaded", () => { restoreDraft(); updateSelection(); hideEndedUndo(); });

  // --- Saved replies: pick one by name (type to search), its text goes in at the cursor. ---------------
  document.addEventListener("change", async (event) => {
    const picker = event.target;
    if (picker.id !== "saved-reply" || !picker.value) return;
    const response = await fetch(`${picker.dataset.fillUrl}?name=${encodeURIComponent(picker.value)}`,
                                 { credentials: "same-origin" });
    if (!response.ok) { flash("No saved reply by that name."); return; }
    const text = await response.text();
    const box = document.getElementById("reply-body");
    const start = box.selectionStart ?? box.value.length;
    box.value = box.value.slice(0, start) + text + box.value.slice(box.selectionEnd ?? start);
    picker.value = "";
    box.focus();
    box.dispatchEvent(new Event("input", { bubbles: true }));
  });

  // --- Undo send: the button goes once the reply has left. ----------------------------------------
  function hideEndedUndo() {
    for (const el of document.querySelectorAll("form.undo[data-held-until]")) {
      const left = Date.parse(el.dataset.heldUntil) - Date.now();
      setTimeout(() => el.remove(), Math.max(0, left));
    }
  }
  document.addEventListener("htmx:afterSwap", hideEndedUndo);

  // The phone's action bar: Reply and Note focus their boxes.
  document.addEventListener("click", (event) => {
    const link = event.target.closest("[data-focus]");
    if (!link) return;
    const box = document.getElementById(link.dataset.focus);
    if (box) { event.preventDefault(); box.scrollIntoView({ block: "center" }); box.focus(); }
  });

  // --- Live: new mail and colleagues' changes without a reload; who else is on a ticket. --------------
  const list = document.getElementById("ticket-list");
  const presenceBox = () => document.getElementById("presence");
  const here = new Map();  // ticket number -> Map(agent id -> {name, state, at})
  function seedPresence() {  // who the server said was here when it drew the page
    const box = presenceBox();
    if (!box || !box.dataset.present) return;
    let seen; try { seen = JSON.parse(box.dataset.present); } catch { return; }
    if (!here.has(box.dataset.ticket)) here.set(box.dataset.ticket, new Map());
    const people = here.get(box.dataset.ticket);
    for (const s of seen) {
      const at = Date.now() - Math.max(0, Date.now() / 1000 - s.at) * 1000;
      if (!people.has(s.agent_id)) people.set(s.agent_id, { id: s.agent_id, name: s.name, state: s.state, at });
    }
    delete box.dataset.present;
  }
  function showPresence() {
    seedPresence();
    const box = presenceBox();
    const now = Date.now();
    for (const people of here.values()) {
      for (const [id, seen] of people) if (now - seen.at > 45000 || seen.state === "left") people.delete(id);
    }
    if (box) {
      const people = [...(here.get(box.dataset.ticket) || new Map()).values()].filter((s) => s.id !== box.dataset.me);
      box.textContent = people.map((s) => `${s.name} is ${s.state}`).join(", ") + (people.length ? "." : "");
    }
    for (const row of document.querySelectorAll(".list .row[data-number]")) {
      const people = [...(here.get(row.dataset.number) || new Map()).values()];
      let mark = row.querySelector(".presence-mark");
      if (!people.length) { mark?.remove(); continue; }
      if (!mark) { mark = Object.assign(document.createElement("span"), { className: "presence-mark" }); row.append(mark); }
      mark.textContent = people.map((s) => `${s.name} is ${s.state}`).join(", ");
    }
  }
  function refreshList() {
    const picked = new Set([...document.querySelectorAll(".list .pick:checked")].map((p) => p.value));
    htmx.ajax("GET", location.pathname + location.search, { target: "#ticket-list", swap: "innerHTML" }).then(() => {
      for (const pick of document.querySelectorAll(".list .pick")) pick.checked = picked.has(pick.value);
      updateSelection(); showPresence();
    });
  }
  function refreshTicket() {
    const box = presenceBox();
    if (!box) return;
    htmx.ajax("GET", location.pathname, { target: "#ticket-detail", select: "#ticket-detail", swap: "outerHTML" })
      .then(() => { restoreDraft(); showPresence(); });
  }
  let listTimer = null;
  function onEvent(event) {
    const box = presenceBox();
    if (list) { clearTimeout(listTimer); listTimer = setTimeout(refreshList, 300); }
    if (box && event.ticket === box.dataset.ticket && event.actor !== `agent:${box.dataset.me}`
        && event.kind !== "viewing") {  // a colleague opening the ticket shows as presence, not as news
      const typing = document.activeElement?.tagName === "TEXTAREA" && document.activeElement.value.trim();
      if (typing) document.getElementById("live-news")?.removeAttribute("hidden");
      else refreshTicket();
    }
  }
  document.addEventListener("click", (event) => {
    if (!event.target.closest("[data-live-refresh]")) return;
    refreshTicket();
  });
  if ((list || presenceBox()) && window.EventSource) {
    const source = new EventSource("/tickets/events");  // the browser resumes with Last-Event-ID by itself
    source.onmessage = (message) => {
      let event; try { event = JSON.parse(message.data); } catch { return; }
      onEvent(event);
      document.dispatchEvent(new CustomEvent("echo:event", { detail: event }));
    };
    source.addEventListener("presence", (message) => {
      let seen; try { seen = JSON.parse(message.data); } catch { return; }
      if (!here.has(seen.ticket)) here.set(seen.ticket, new Map());
      here.get(seen.ticket).set(seen.agent_id, { id: seen.agent_id, name: seen.name, state: seen.state, at: Date.now() });
      showPresence();
    });
    window.addEventListener("pagehide", () => source.close());
  }
  // This agent's own heartbeat on a ticket: viewing, or replying while the reply box has text.
  function beat(state) {
    const box = presenceBox();
    if (!box) return;
    const body = new URLSearchParams({ state });
    if (state === "left") { navigator.sendBeacon?.(`${location.pathname}/presence`, new Blob([body + `&csrf_token=${encodeURIComponent(csrf())}`], { type: "application/x-www-form-urlencoded" })); return; }
    fetch(`${location.pathname}/presence`, { method: "POST", credentials: "same-origin", redirect: "manual",
      headers: { "X-CSRFToken": csrf(), "HX-Request": "true" }, body }).catch(() => {});
  }
  const replying = () => (document.getElementById("reply-body")?.value || "").trim() ? "replying" : "viewing";
  if (presenceBox()) {
    beat(replying());
    setInterval(() => beat(replying()), 20000);
    setInterval(showPresence, 15000);
    let last = "viewing";
    document.addEventListener("input", (event) => {
      if (event.target.id !== "reply-body") return;
      const now = replying();
      if (now !== last) { last = now; beat(now); }
    });
    window.addEventListener("pagehide", () => beat("left"));
  }

  // --- The bell: unread notifications, counted again after each event and every minute. --------------
  const bell = document.getElementById("bell-count");
  async function countBell() {
    if (!bell) return;
    try {
      const response = await fetch(bell.dataset.countUrl, { credentials: "same-origin", redirect: "manual" });
      if (!response.ok) return;
      const { unread } = await response.json();
      bell.textContent = unread ? (unread > 99 ? "99+" : String(unread)) : "";
    } catch { /* offline: the next count will do */ }
  }
  let bellTimer = null;
  document.addEventListener("echo:event", () => { clearTimeout(bellTimer); bellTimer = setTimeout(countBell, 4000); });
  countBell();
  setInterval(countBell, 60000);

  // --- @mentions in a note: type @ and a few letters, pick a colleague with the arrows and Enter or Tab. --
  let mentionList = null;
  function closeMentions() { mentionList?.remove(); mentionList = null; }
  function mentionQuery(box) {
    const before = box.value.slice(0, box.selectionStart);
    const found = /(^|[\s(])@([\w.+-]{0,30})$/.exec(before);
    return found ? found[2].toLowerCase() : null;
  }
  function pickMention(box, handle) {
    const at = box.value.slice(0, box.selectionStart).lastIndexOf("@");
    box.value = box.value.slice(0, at) + "@" + handle + " " + box.value.slice(box.selectionStart);
    const caret = at + handle.length + 2;
    box.setSelectionRange(caret, caret);
    closeMentions();
    box.focus();
  }
  document.addEventListener("input", (event) => {
    const box = event.target;
    if (box.id !== "note-body" || !box.dataset.mentions) return;
    const query = mentionQuery(box);
    closeMentions();
    if (query === null) return;
    let people; try { people = JSON.parse(box.dataset.mentions); } catch { return; }
    const matches = people.filter(([handle, name]) => handle.startsWith(query) || name.toLowerCase().includes(query)).slice(0, 6);
    if (!matches.length) return;
    mentionList = Object.assign(document.createElement("ul"), { className: "mention-list", role: "listbox" });
    matches.forEach(([handle, name], index) => {
      const item = Object.assign(document.createElement("li"), { role: "option", textContent: `${name} @${handle}` });
      item.dataset.handle = handle;
      item.setAttribute("aria-selected", String(index === 0));
      item.addEventListener("mousedown", (e) => { e.preventDefault(); pickMention(box, handle); });
      mentionList.append(item);
    });
    box.parentElement.append(mentionList);
  });
  document.addEventListener("keydown", (event) => {
    if (!mentionList || event.target.id !== "note-body") return;
    const items = [...mentionList.children];
    const current = items.findIndex((li) => li.getAttribute("aria-selected") === "true");
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const next = (current + (event.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
      items.forEach((li, i) => li.setAttribute("aria-selected", String(i === next)));
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.ctrlKey && !event.metaKey) {
      event.preventDefault();
      pickMention(event.target, items[Math.max(0, current)].dataset.handle);
    } else if (event.key === "Escape") closeMentions();
  }, true);
})();
