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
    if (event.key === "j") select(current + 1);
    else if (event.key === "k") select(current - 1);
    else if (event.key === "Enter" && current >= 0) rows[current].click();
    else if (event.key === "/") focus("search");
    else if (event.key === "r") focus("reply-body");
    else if (event.key === "n") focus("note-body");
    else if (event.key === "i" && lastKey === "g") window.location.assign("/tickets");
    lastKey = event.key;
  });
})();
