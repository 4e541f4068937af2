// The VssID app's side of the login, played in a browser against the broker's mobile API
// (docs: README, "The app's flow, shown"). What a real app keeps in its keychain this page
// keeps in sessionStorage and IndexedDB: it is a demo, on loopback only.
//
//   1. PKCE (RFC 7636): a random verifier, its S256 challenge, made with WebCrypto.
//   2. DPoP (RFC 9449): a P-256 key pair made non-extractable, kept in IndexedDB so it
//      survives the trip to VNeID; every token request and API call carries a proof.
//   3. POST /api/v1/auth/vneid/start → the VNeID authorization URL; open it ("the VNeID app").
//   4. Back on the app's redirect with code and state: POST /api/v1/auth/vneid/complete with
//      the verifier → DPoP-bound access and refresh tokens.
//   5. The app's screens from /api/v1/me*; on 401 the refresh token renews the pair once.
//   6. A request to the agency: on 401 `insufficient_user_authentication` (RFC 9470) a refresh
//      would not help; the app signs in again with the challenge's max_age, then sends it.
"use strict";

const app = document.getElementById("app");
const REDIRECT_URI = app.dataset.redirectUri;
const STORE = window.sessionStorage;
const encoder = new TextEncoder();

// --- bytes and encodings -------------------------------------------------------------------
function base64url(bytes) {
  let binary = "";
  for (const byte of new Uint8Array(bytes)) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomToken(length) {
  return base64url(crypto.getRandomValues(new Uint8Array(length)));
}

async function sha256(text) {
  return crypto.subtle.digest("SHA-256", encoder.encode(text));
}

// --- the DPoP key, kept in IndexedDB ------------------------------------------------------------
function keyStore(mode, action) {
  return new Promise((resolve, reject) => {
    const opening = indexedDB.open("vssid-app-demo", 1);
    opening.onupgradeneeded = () => opening.result.createObjectStore("keys");
    opening.onerror = () => reject(opening.error);
    opening.onsuccess = () => {
      const request = action(opening.result.transaction("keys", mode).objectStore("keys"));
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    };
  });
}

async function dpopKey() {
  let key = await keyStore("readonly", (store) => store.get("dpop"));
  if (!key) {
    key = await crypto.subtle.generateKey({ name: "ECDSA", namedCurve: "P-256" }, false, [
      "sign",
      "verify",
    ]);
    await keyStore("readwrite", (store) => store.put(key, "dpop"));
  }
  return key;
}

async function dpopProof(method, url, accessToken) {
  const key = await dpopKey();
  const { kty, crv, x, y } = await crypto.subtle.exportKey("jwk", key.publicKey);
  const header = { typ: "dpop+jwt", alg: "ES256", jwk: { kty, crv, x, y } };
  const claims = { jti: randomToken(16), htm: method, htu: url, iat: Math.floor(Date.now() / 1000) };
  if (accessToken) claims.ath = base64url(await sha256(accessToken));
  const signingInput = `${base64url(encoder.encode(JSON.stringify(header)))}.${base64url(
    encoder.encode(JSON.stringify(claims)),
  )}`;
  // WebCrypto's ECDSA signature is r||s, the form JWS uses (RFC 7518 §3.4).
  const signature = await crypto.subtle.sign(
    { name: "ECDSA", hash: "SHA-256" },
    key.privateKey,
    encoder.encode(signingInput),
  );
  return `${signingInput}.${base64url(signature)}`;
}

// --- talking to the broker ------------------------------------------------------------------------
class ApiError extends Error {
  constructor(problem, status) {
    super(problem.title || `HTTP ${status}`);
    this.code = problem.code || `http_${status}`;
    this.status = status;
  }
}

async function problemOf(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

async function postJson(path, body, headers = {}) {
  const url = `${location.origin}${path}`;
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  if (!response.ok) throw new ApiError(await problemOf(response), response.status);
  return response.json();
}

function saveTokens(tokens) {
  STORE.setItem("tokens", JSON.stringify({ access: tokens.access_token, refresh: tokens.refresh_token }));
}

function tokens() {
  return JSON.parse(STORE.getItem("tokens") || "null");
}

// One refresh at a time: two screens meeting an expired token at once must not both spend the
// same refresh token, or the second spend looks like a stolen token and ends the family.
let refreshing = null;

function refreshOnce() {
  refreshing ??= refreshTokens().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function refreshTokens() {
  const url = `${location.origin}/api/v1/auth/token`;
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "Content-Type": "application/x-www-form-urlencoded",
      DPoP: await dpopProof("POST", url),
    },
    body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: tokens().refresh }),
  });
  if (!response.ok) throw new ApiError(await problemOf(response), response.status);
  saveTokens(await response.json());
  say("Phiên truy cập đã hết hạn và vừa được làm mới bằng refresh token.");
}

// A protected call: DPoP-bound token and a fresh proof; on 401 refresh once and try again.
async function api(method, path, { retried = false, body = undefined } = {}) {
  const url = `${location.origin}${path}`;
  const access = tokens().access;
  const headers = { Authorization: `DPoP ${access}`, DPoP: await dpopProof(method, url, access) };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(url, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const stepUp = (response.headers.get("WWW-Authenticate") || "").includes("insufficient_user_authentication");
  if (response.status === 401 && !retried && !stepUp) {
    // Renewed meanwhile by another call: just use the new token.
    if (tokens().access === access) await refreshOnce();
    return api(method, path, { retried: true, body });
  }
  return response;
}

async function apiJson(path) {
  const response = await api("GET", path);
  if (!response.ok) throw new ApiError(await problemOf(response), response.status);
  return response.json();
}

// --- screens ------------------------------------------------------------------------------------
function show(screen) {
  for (const element of document.querySelectorAll(".app-screen")) {
    element.hidden = element.id !== `screen-${screen}`;
  }
}

function say(message) {
  document.getElementById("app-status").textContent = message;
}

function showError(error) {
  document.getElementById("app-error-message").textContent = error.message;
  document.getElementById("app-error-code").textContent = error.code || "client_error";
  show("error");
}

function item(text) {
  const li = document.createElement("li");
  li.textContent = text;
  return li;
}

const money = new Intl.NumberFormat("vi-VN");
const month = (iso) => (iso ? `${iso.slice(5, 7)}/${iso.slice(0, 4)}` : "nay");
const day = (iso) => `${iso.slice(8, 10)}/${iso.slice(5, 7)}/${iso.slice(0, 4)}`;

async function showAccount() {
  const me = await apiJson("/api/v1/me");
  document.getElementById("app-name").textContent = me.full_name;
  document.getElementById("app-bhxh-code").textContent = me.bhxh_code;
  document.getElementById("app-birth-date").textContent = day(me.birth_date);
}

async function showHistory() {
  const history = await apiJson("/api/v1/me/insurance");
  const total = history.contributions.total_months;
  document.getElementById("app-contributions").textContent =
    `Tổng thời gian đóng BHXH: ${Math.floor(total / 12)} năm ${total % 12} tháng`;
  const periods = document.getElementById("app-periods");
  periods.replaceChildren(
    ...history.periods.items.map((p) =>
      item(`${p.kind} · ${month(p.start_month)}–${month(p.end_month)} · ${p.employer || "—"}`),
    ),
  );
  const benefits = document.getElementById("app-benefits");
  benefits.replaceChildren(...history.benefits.items.map(benefitItem));
  if (!history.benefits.items.length) benefits.replaceChildren(item("Chưa có khoản chi trả nào."));
  offerMoreBenefits(history.benefits);
}

const benefitItem = (b) => item(`${day(b.paid_on)} · ${b.label} · ${money.format(b.amount_vnd)} đ`);

// The first page comes with the history; the rest page by page, as the API hands them out.
function offerMoreBenefits(page) {
  const more = document.getElementById("app-benefits-more");
  const shown = document.getElementById("app-benefits").children.length;
  document.getElementById("app-benefits-count").textContent = page.total
    ? `${shown} trong ${page.total} khoản`
    : "";
  more.hidden = page.next_offset === null || page.next_offset === undefined;
  more.dataset.offset = String(page.next_offset ?? "");
}

async function showMoreBenefits() {
  const more = document.getElementById("app-benefits-more");
  const page = await apiJson(`/api/v1/me/insurance/benefits?offset=${more.dataset.offset}&limit=20`);
  document.getElementById("app-benefits").append(...page.items.map(benefitItem));
  offerMoreBenefits(page);
}

async function showCard() {
  const image = document.getElementById("app-card-image");
  const message = document.getElementById("app-card-message");
  const response = await api("GET", "/api/v1/me/health-card.png");
  if (!response.ok) {
    message.textContent = (await problemOf(response)).title || "Không tải được ảnh thẻ.";
    message.hidden = false;
    image.hidden = true;
    return;
  }
  if (image.src) URL.revokeObjectURL(image.src);
  image.src = URL.createObjectURL(await response.blob());
  image.hidden = false;
  message.hidden = true;
}

// The QR alone, as wide as the screen, for the counter's scanner; the tabs step aside.
async function openCardFull() {
  const response = await api("GET", "/api/v1/me/health-card-qr.svg");
  if (!response.ok) throw new ApiError(await problemOf(response), response.status);
  const qr = document.getElementById("app-card-qr");
  if (qr.src) URL.revokeObjectURL(qr.src);
  qr.src = URL.createObjectURL(await response.blob());
  document.getElementById("tab-card").hidden = true;
  document.getElementById("app-card-full").hidden = false;
}

function closeCardFull() {
  document.getElementById("app-card-full").hidden = true;
  document.getElementById("tab-card").hidden = false;
}

async function showSessions() {
  const list = document.getElementById("app-sessions");
  const sessions = await apiJson("/api/v1/me/sessions");
  list.replaceChildren(
    ...sessions.map((session) => {
      const li = item(
        `${session.channel === "app" ? "Ứng dụng" : "Trình duyệt"} · ${session.device_name}` +
          (session.current ? " (thiết bị này)" : ""),
      );
      // Any of one's devices can be signed out from here (a lost phone); this one last.
      const button = document.createElement("button");
      button.type = "button";
      button.className = "button";
      button.textContent = session.current ? "Đăng xuất thiết bị này" : `Đăng xuất ${session.device_name}`;
      button.addEventListener("click", () =>
        (session.current ? signOutThisDevice(session.id) : signOutOtherDevice(session.id)).catch(showError),
      );
      li.append(" ", button);
      return li;
    }),
  );
}

// --- requests to the agency (step-up) --------------------------------------------------------
const KINDS = {
  health_card_reissue: "Cấp lại thẻ BHYT",
  primary_care_change: "Đổi nơi KCB ban đầu",
  phone_change: "Đổi số điện thoại",
};
const STATUSES = {
  awaiting_code: "chờ xác nhận mã",
  submitted: "đã gửi",
  in_progress: "đang xử lý",
  done: "đã hoàn thành",
  refused: "bị từ chối",
  cancelled: "đã huỷ",
};

async function showRequests() {
  const list = document.getElementById("app-requests");
  const mine = await apiJson("/api/v1/me/requests");
  list.replaceChildren(
    ...mine.map((r) => item(`${r.reference} · ${KINDS[r.kind]} · ${STATUSES[r.status]}`)),
  );
  if (!mine.length) list.replaceChildren(item("Chưa có yêu cầu nào."));
  const waiting = mine.find((r) => r.status === "awaiting_code");
  document.getElementById("app-code-form").hidden = !waiting;
  if (waiting) document.getElementById("app-code-form").dataset.reference = waiting.reference;
}

function requestBody() {
  const kind = document.getElementById("app-request-kind").value;
  if (kind === "phone_change") return { kind, new_phone: document.getElementById("app-new-phone").value.trim() };
  return { kind, reason: document.getElementById("app-reissue-reason").value };
}

async function sendRequest(body) {
  const response = await api("POST", "/api/v1/me/requests", { body });
  const answer = await problemOf(response);
  if (response.status === 401 && answer.code === "step_up_required") {
    // RFC 9470: sign in again at VNeID, fresh enough; the request is sent on the way back.
    STORE.setItem("pending-request", JSON.stringify(body));
    say("Cần xác thực lại bằng VNeID trước khi gửi yêu cầu…");
    await startLogin({ max_age: answer.max_age });
    return;
  }
  if (!response.ok) throw new ApiError(answer, response.status);
  say(`Đã gửi yêu cầu ${answer.reference} (${STATUSES[answer.status]}).`);
  await openTab("requests");
}

async function confirmCode() {
  const form = document.getElementById("app-code-form");
  const code = document.getElementById("app-phone-code").value.trim();
  const path = `/api/v1/me/requests/${encodeURIComponent(form.dataset.reference)}/confirm-phone-code`;
  const response = await api("POST", path, { body: { code } });
  const answer = await problemOf(response);
  if (!response.ok) throw new ApiError(answer, response.status);
  say(`Yêu cầu ${answer.reference}: ${STATUSES[answer.status]}.`);
  await openTab("requests");
}

const TABS = {
  account: showAccount,
  history: showHistory,
  card: showCard,
  sessions: showSessions,
  requests: showRequests,
};

async function openTab(name) {
  for (const button of document.querySelectorAll("[data-tab]")) {
    button.setAttribute("aria-pressed", String(button.dataset.tab === name));
  }
  for (const tab of Object.keys(TABS)) {
    document.getElementById(`tab-${tab}`).hidden = tab !== name;
  }
  document.getElementById("app-card-full").hidden = true;
  await TABS[name]();
}

async function endSession(sessionId) {
  const response = await api("DELETE", `/api/v1/me/sessions/${encodeURIComponent(sessionId)}`);
  if (!response.ok) throw new ApiError(await problemOf(response), response.status);
}

async function signOutOtherDevice(sessionId) {
  await endSession(sessionId);
  say("Đã đăng xuất thiết bị kia.");
  await showSessions();
}

async function signOutThisDevice(sessionId) {
  await endSession(sessionId);
  STORE.removeItem("tokens");
  show("start");
}

// --- the login -------------------------------------------------------------------------------
async function startLogin(stepUp = {}) {
  const verifier = randomToken(48);
  const started = await postJson("/api/v1/auth/vneid/start", {
    redirect_uri: REDIRECT_URI,
    code_challenge: base64url(await sha256(verifier)),
    code_challenge_method: "S256",
    ...stepUp,
  });
  STORE.setItem("login", JSON.stringify({ verifier, state: started.state }));
  await dpopKey(); // made now, so the same key signs the completion after VNeID
  show("switching");
  location.assign(started.authorization_url);
}

// `code` and `encrypt_key` as sent: VNeID's dialect puts base64 in them unescaped, and
// URLSearchParams would turn each "+" into a space. Percent-escapes are still undone.
function rawQuery(search) {
  const found = {};
  for (const part of search.replace(/^\?/, "").split("&")) {
    const [name, ...rest] = part.split("=");
    if ((name === "code" || name === "encrypt_key") && !(name in found)) {
      found[name] = decodeURIComponent(rest.join("="));
    }
  }
  return found;
}

async function completeLogin(params) {
  const raw = rawQuery(location.search);
  const pending = JSON.parse(STORE.getItem("login") || "null");
  STORE.removeItem("login");
  // The code must not stay in the address bar or the history (RFC 9700 §4.2.4).
  history.replaceState(null, "", "/demo/app");
  if (params.get("error")) {
    throw new ApiError({ title: "Đăng nhập tại VNeID chưa hoàn tất.", code: params.get("error") }, 400);
  }
  if (!pending || pending.state !== params.get("state")) {
    throw new ApiError({ title: "Phiên đăng nhập không khớp. Vui lòng đăng nhập lại.", code: "state_mismatch" }, 400);
  }
  const url = `${location.origin}/api/v1/auth/vneid/complete`;
  const body = { code: raw.code, state: params.get("state"), code_verifier: pending.verifier };
  if (params.get("iss")) body.iss = params.get("iss");
  // VNeID's dialect: an encrypted code travels with its key, which the broker needs too.
  if (raw.encrypt_key) body.encrypt_key = raw.encrypt_key;
  const issued = await postJson("/api/v1/auth/vneid/complete", body, { DPoP: await dpopProof("POST", url) });
  saveTokens(issued);
  return issued.linked_now;
}

async function signedIn(linkedNow) {
  show("signed-in");
  say(linkedNow ? "Tài khoản định danh điện tử vừa được liên kết với tài khoản VssID." : "Đã đăng nhập.");
  const pending = STORE.getItem("pending-request");
  if (pending) {
    STORE.removeItem("pending-request");
    await sendRequest(JSON.parse(pending));
    return;
  }
  await openTab("account");
}

document.getElementById("app-login").addEventListener("click", () => startLogin().catch(showError));
document.getElementById("app-restart").addEventListener("click", () => show("start"));
document.getElementById("app-reload").addEventListener("click", () => showAccount().catch(showError));
document.getElementById("app-request-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sendRequest(requestBody()).catch(showError);
});
document.getElementById("app-code-form").addEventListener("submit", (event) => {
  event.preventDefault();
  confirmCode().catch(showError);
});
document.getElementById("app-benefits-more").addEventListener("click", () => showMoreBenefits().catch(showError));
document.getElementById("app-card-full-open").addEventListener("click", () => openCardFull().catch(showError));
document.getElementById("app-card-full-close").addEventListener("click", closeCardFull);
for (const button of document.querySelectorAll("[data-tab]")) {
  button.addEventListener("click", () => openTab(button.dataset.tab).catch(showError));
}

const params = new URLSearchParams(location.search);
if (params.has("code") || params.has("error")) {
  completeLogin(params).then(signedIn).catch(showError);
} else if (tokens()) {
  signedIn(false).catch(showError);
} else {
  show("start");
}
