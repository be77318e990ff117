// The sample SPA: every call to bff carries the anti-forgery header X-CSRF: 1.
"use strict";

const csrf = { "X-CSRF": "1" };

function show(id, visible) {
  document.getElementById(id).hidden = !visible;
}

// silentLogin asks bff, in a hidden iframe, to log in with prompt=none: if
// the user still has a session at the OpenID Provider, bff starts a new
// session without showing anything. The iframe's page reports the outcome
// with postMessage; only a message from this origin counts.
function silentLogin(timeoutMs) {
  return new Promise((resolve) => {
    const frame = document.createElement("iframe");
    frame.hidden = true;
    let timer;
    function done(loggedIn) {
      clearTimeout(timer);
      window.removeEventListener("message", onMessage);
      frame.remove();
      resolve(loggedIn);
    }
    function onMessage(event) {
      if (event.origin !== window.location.origin || event.source !== frame.contentWindow) return;
      if (!event.data || event.data.source !== "bff-silent-login") return;
      done(event.data.isLoggedIn === true);
    }
    window.addEventListener("message", onMessage);
    timer = setTimeout(() => done(false), timeoutMs);
    frame.src = "/bff/silent-login";
    document.body.append(frame);
  });
}

async function fetchUser() {
  return fetch("/bff/user", { headers: csrf, credentials: "same-origin" });
}

async function loadUser() {
  const status = document.getElementById("status");
  let resp;
  let silently = false;
  // After the user ended this session on purpose, do not log in again
  // silently through the OP's session.
  const ended = sessionStorage.getItem("bff-ended") === "1";
  sessionStorage.removeItem("bff-ended");
  try {
    resp = await fetchUser();
    if (resp.status === 401 && !ended && await silentLogin(5000)) {
      silently = true;
      resp = await fetchUser();
    }
  } catch (e) {
    status.textContent = "bff is not reachable: " + e;
    return;
  }
  if (resp.status === 401) {
    status.textContent = "You are not logged in.";
    show("login", true);
    return;
  }
  if (!resp.ok) {
    status.textContent = "bff answered " + resp.status;
    return;
  }
  const claims = await resp.json();
  const byType = {};
  const tbody = document.querySelector("#claims tbody");
  for (const c of claims) {
    byType[c.type] = c.value;
    const tr = document.createElement("tr");
    const name = document.createElement("td");
    const value = document.createElement("td");
    name.textContent = c.type;
    value.textContent = typeof c.value === "string" ? c.value : JSON.stringify(c.value);
    tr.append(name, value);
    tbody.append(tr);
  }
  document.getElementById("name").textContent = byType.name || byType.preferred_username || byType.sub;
  const logout = document.getElementById("logout");
  logout.href = byType["bff:logout_url"];
  status.textContent = silently ? "You are logged in (silently, through your session at the OpenID Provider)." : "You are logged in.";
  show("logout", true);
  show("user", true);
  show("api", true);
  show("sessions", true);
  loadSessions();
}

async function callAPI() {
  const out = document.getElementById("api-result");
  out.textContent = "…";
  const resp = await fetch("/api/hello", { headers: csrf, credentials: "same-origin" });
  const text = await resp.text();
  out.textContent = resp.status + "\n" + text;
}

// loadSessions lists the user's sessions, with a button to end each one.
async function loadSessions() {
  const resp = await fetch("/bff/sessions", { headers: csrf, credentials: "same-origin" });
  const tbody = document.querySelector("#session-list tbody");
  tbody.replaceChildren();
  if (!resp.ok) return;
  for (const s of await resp.json()) {
    const tr = document.createElement("tr");
    for (const text of [s.user_agent + (s.current ? " (this one)" : ""), new Date(s.last_seen).toLocaleString()]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement("td");
    const end = document.createElement("button");
    end.type = "button";
    end.textContent = "End";
    end.addEventListener("click", () => revoke({ id: s.id }, s.current));
    td.append(end);
    tr.append(td);
    tbody.append(tr);
  }
}

async function revoke(body, current) {
  if (current) sessionStorage.setItem("bff-ended", "1");
  await fetch("/bff/sessions/revoke", {
    method: "POST",
    headers: { ...csrf, "Content-Type": "application/json" },
    credentials: "same-origin",
    body: JSON.stringify(body),
  });
  window.location.reload();
}

document.getElementById("call-api").addEventListener("click", callAPI);
document.getElementById("end-others").addEventListener("click", () => revoke({ others: true }));
loadUser();
