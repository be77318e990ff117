// The sample SPA: every call to bff carries the anti-forgery header X-CSRF: 1.
"use strict";

const csrf = { "X-CSRF": "1" };

function show(id, visible) {
  document.getElementById(id).hidden = !visible;
}

async function loadUser() {
  const status = document.getElementById("status");
  let resp;
  try {
    resp = await fetch("/bff/user", { headers: csrf, credentials: "same-origin" });
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
  status.textContent = "You are logged in.";
  show("logout", true);
  show("user", true);
  show("api", true);
}

async function callAPI() {
  const out = document.getElementById("api-result");
  out.textContent = "…";
  const resp = await fetch("/api/hello", { headers: csrf, credentials: "same-origin" });
  const text = await resp.text();
  out.textContent = resp.status + "\n" + text;
}

document.getElementById("call-api").addEventListener("click", callAPI);
loadUser();
